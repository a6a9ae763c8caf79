"""`mediafm serve STORE`: the JSON API and the web explorer (loopback only by default)."""

from __future__ import annotations

import argparse
import sys

from mediafm.serve.app import ServeConfig, create_app

_D = ServeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store folder")
    p.add_argument("--host", default=_D.host,
                   help="address to bind (default %(default)s: this machine only; 0.0.0.0 exposes the catalog)")
    p.add_argument("--port", type=int, default=_D.port, help="port (default %(default)s)")
    p.add_argument("--model", default=_D.model_id, help="contextual model id (default: the store's only model)")


def run(args: argparse.Namespace) -> int:
    import threading

    import uvicorn

    from mediafm.search.text import default_text_encoder

    config = ServeConfig(host=args.host, port=args.port, model_id=args.model)
    app = create_app(args.store, config)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"mediafm serve: warning: binding {config.host}; the catalog and its videos are reachable "
              "from other machines and there is no authentication", file=sys.stderr)
    print(f"mediafm explorer on http://{config.host}:{config.port}/  (API docs: /docs)", file=sys.stderr)
    # Load the text encoder in the background so the first search does not wait for it.
    threading.Thread(target=default_text_encoder, daemon=True).start()
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    return 0
