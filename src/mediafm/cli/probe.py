"""`mediafm probe STORE --labels FILE --task KIND --embedding KIND`: one cross-validated linear probe."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mediafm.cli._probe import add_probe_options, probe_config
from mediafm.evaluation.kinds import CLIP_KINDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--labels", required=True, metavar="FILE", help="CSV title,start,end,label (see docs/tasks.md)")
    p.add_argument("--task", required=True, choices=CLIP_KINDS)
    p.add_argument("--format", default="table", choices=("table", "json"))
    add_probe_options(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mediafm.evaluation.clips import ClipEmbedder
    from mediafm.evaluation.labels import read_labels, targets
    from mediafm.evaluation.probes import run_probe

    rows = read_labels(args.labels)
    embedder = ClipEmbedder.open(args.store, args.embedding, args.model, args.pooling)
    kept = [r for r in rows if embedder.store.has_title(r.clip.title)]
    if len(kept) < len(rows):
        missing = sorted({r.clip.title for r in rows} - {r.clip.title for r in kept})
        print(f"warning: {len(rows) - len(kept)} clips name titles not in the store (e.g. {missing[:3]}); dropped",
              file=sys.stderr)
    tg = targets(kept, args.task, args.labels)
    X = embedder.embed_many([r.clip for r in kept], progress=True)
    groups = np.array([r.clip.title for r in kept])
    config = probe_config(args)
    if kept:  # the embedding's parts, each weighed equally by the probe (ProbeConfig.blocks)
        config = embedder.probe_config(config, X, kept[0].clip.title)
    res = run_probe(X, tg, groups, args.metric, config)
    out = {"labels": str(Path(args.labels)), "task": args.task, "embedding": args.embedding,
           "pooling": args.pooling, "dim": int(X.shape[1]), "classes": list(tg.classes), **res.to_dict()}
    if args.format == "json":
        print(json.dumps(out, indent=1))
    else:
        s = res.score
        print(f"{args.embedding} on {Path(args.labels).name} ({args.task}, {s.n} clips, {s.n_groups} titles)")
        print(f"{s.metric}: {s.value:.4f}  95% CI [{s.low:.4f}, {s.high:.4f}]")
    return 0
