"""`mediafm serve STORE`: the JSON API and the web explorer (loopback only by default)."""

from __future__ import annotations

import argparse
import sys

from mediafm.cli.numbers import count, number
from mediafm.serve.app import ServeConfig, create_app

_D = ServeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store folder (only read: a read-only store is fine)")
    p.add_argument("--host", default=_D.host,
                   help="address to bind (default %(default)s: this machine only; 0.0.0.0 exposes the catalog)")
    p.add_argument("--port", type=count(0, 65535), default=_D.port, help="port (default %(default)s)")
    p.add_argument("--model", default=_D.model_id, help="contextual model id (default: the store's only model)")
    p.add_argument("--allow-host", action="append", default=list(_D.allow_hosts), metavar="NAME",
                   help="also answer requests for this host name (repeatable; e.g. a reverse proxy's name). "
                        "Requests naming any other host are refused (DNS rebinding)")
    p.add_argument("--cache-mb", type=count(0), default=_D.cache_mb,
                   help="memory for cached responses and thumbnails (default %(default)s)")
    p.add_argument("--heads", nargs="+", default=list(_D.heads), metavar="DIR",
                   help="heads from `mediafm fit` (a head folder, or a folder of them) to show in the explorer")
    p.add_argument("--workspace", default=_D.workspace, metavar="DIR",
                   help="folder for your tags, their labels and heads: label clips in the page, fit a head, "
                        "review its predictions (created if missing; the store stays read-only)")
    p.add_argument("--break-spacing", type=number(minimum=0), default=_D.break_spacing_s,
                   help="default seconds between ad-break markers (default %(default)s; the page can change it)")


def run(args: argparse.Namespace) -> int:
    import threading

    import uvicorn
    from threadpoolctl import threadpool_limits

    from mediafm.serve.hosts import LOOPBACK_NAMES, allowed_hosts

    # Requests run side by side in worker threads; a BLAS or OpenMP pool inside each (a map's SVD, a
    # text search's product) oversubscribes the cores: 80 maps from 16 threads took 22.8 s with the
    # default pools and 0.44 s with one thread each (2 cores). Parallelism comes from the requests.
    threadpool_limits(1)

    config = ServeConfig(host=args.host, port=args.port, model_id=args.model,
                         allow_hosts=tuple(args.allow_host), cache_mb=args.cache_mb, heads=tuple(args.heads),
                         break_spacing_s=args.break_spacing, workspace=args.workspace)
    app = create_app(args.store, config)
    if config.host not in LOOPBACK_NAMES:
        print(f"mediafm serve: warning: binding {config.host}; the catalog and its videos are reachable "
              "from other machines and there is no authentication", file=sys.stderr)
        names = sorted(allowed_hosts(config.host, config.allow_hosts))
        print(f"mediafm serve: answering requests for: {', '.join(names)} (add names with --allow-host)",
              file=sys.stderr)
    print(f"mediafm explorer on http://{_url_host(config.host)}:{config.port}/  (API docs: /docs)", file=sys.stderr)
    # Load the text encoder and indexes in the background so the first requests do not wait for them.
    threading.Thread(target=app.state.catalog.warm, daemon=True, name="mediafm-warm").start()
    if app.state.workspace is not None:  # the tag loop's catalog-wide vectors, before the first fit asks
        threading.Thread(target=_try_table, args=(app.state.workspace,), daemon=True, name="mediafm-tags").start()
        print(f"mediafm serve: tags in {app.state.workspace.root} (fitted on {app.state.workspace.embedding} "
              "embeddings)", file=sys.stderr)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _try_table(ws) -> None:
    from mediafm.errors import MediafmError

    try:
        ws.shot_table()
    except MediafmError as exc:  # nothing encoded yet: the page's requests will say so
        print(f"mediafm serve: tags: {exc}", file=sys.stderr)
