"""`mediafm probe STORE --labels FILE --task KIND --embedding KIND`: one cross-validated linear probe."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mediafm.cli.numbers import count
from mediafm.tasks.clips import EMBEDDING_KINDS, POOLINGS
from mediafm.tasks.labels import TASK_KINDS
from mediafm.tasks.metrics import METRICS
from mediafm.tasks.probes import PROBES, ProbeConfig

_P = ProbeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--labels", required=True, metavar="FILE", help="CSV title,start,end,label (see docs/tasks.md)")
    p.add_argument("--task", required=True, choices=TASK_KINDS)
    p.add_argument("--embedding", default="fused", choices=EMBEDDING_KINDS, help="default: fused")
    p.add_argument("--model", metavar="MODEL_DIR", help="model directory (contextual kinds)")
    p.add_argument("--metric", choices=sorted(METRICS), help="default: macro_ap / micro_ap / ap / kendall_tau by task")
    p.add_argument("--pooling", default="mean", choices=sorted(POOLINGS), help="shots -> clip (default: mean)")
    p.add_argument("--head", default=_P.head, choices=sorted(PROBES), help=f"probe head (default: {_P.head})")
    p.add_argument("--folds", type=count(2), default=_P.folds, help=f"outer CV folds, grouped by title (default: {_P.folds})")
    p.add_argument("--n-boot", type=count(0), default=_P.n_boot, help=f"bootstrap resamples (default: {_P.n_boot})")
    p.add_argument("--seed", type=int, default=_P.seed)
    p.add_argument("--format", default="table", choices=("table", "json"))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mediafm.tasks.clips import ClipEmbedder
    from mediafm.tasks.labels import read_labels, targets
    from mediafm.tasks.probes import run_probe

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
    cfg = ProbeConfig(head=args.head, folds=args.folds, n_boot=args.n_boot, seed=args.seed)
    res = run_probe(X, tg, groups, args.metric, cfg)
    out = {"labels": str(Path(args.labels)), "task": args.task, "embedding": args.embedding,
           "pooling": args.pooling, "dim": int(X.shape[1]), "classes": list(tg.classes), **res.to_dict()}
    if args.format == "json":
        print(json.dumps(out, indent=1))
    else:
        s = res.score
        print(f"{args.embedding} on {Path(args.labels).name} ({args.task}, {s.n} clips, {s.n_groups} titles)")
        print(f"{s.metric}: {s.value:.4f}  95% CI [{s.low:.4f}, {s.high:.4f}]")
    return 0
