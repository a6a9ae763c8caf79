"""`mediafm eval STORE --labels-dir DIR --model MODEL_DIR --out DIR`: the embeddings x tasks grid."""

from __future__ import annotations

import argparse

from mediafm.cli.numbers import count
from mediafm.tasks.clips import EMBEDDING_KINDS, POOLINGS
from mediafm.tasks.probes import PROBES, ProbeConfig

_P = ProbeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--labels-dir", required=True, metavar="DIR",
                   help="folder with genre.csv, tone.csv, ad_relevancy.csv, popularity.csv, retrieval.csv")
    p.add_argument("--model", metavar="MODEL_DIR", help="model directory (rows contextual, contextual-isolated)")
    p.add_argument("--out", required=True, metavar="DIR", help="where eval.md and eval.json go")
    p.add_argument("--embeddings", default=",".join(EMBEDDING_KINDS), help="comma-separated rows (default: all)")
    p.add_argument("--pooling", default="mean", choices=sorted(POOLINGS))
    p.add_argument("--head", default=_P.head, choices=sorted(PROBES))
    p.add_argument("--folds", type=count(2), default=_P.folds)
    p.add_argument("--n-boot", type=count(0), default=_P.n_boot)
    p.add_argument("--seed", type=int, default=_P.seed)


def run(args: argparse.Namespace) -> int:
    from mediafm.errors import ConfigError
    from mediafm.tasks.grid import run_grid, write_reports

    kinds = tuple(k.strip() for k in args.embeddings.split(",") if k.strip())
    bad = [k for k in kinds if k not in EMBEDDING_KINDS]
    if bad:
        raise ConfigError(None, f"unknown embeddings {bad}; choose from {', '.join(EMBEDDING_KINDS)}")
    cfg = ProbeConfig(head=args.head, folds=args.folds, n_boot=args.n_boot, seed=args.seed)
    grid = run_grid(args.store, args.labels_dir, args.model, kinds, pooling=args.pooling, config=cfg)
    md, js = write_reports(grid, args.out)
    print(grid.to_markdown())
    print(f"wrote {md} and {js}")
    return 0
