"""`mediafm eval STORE --labels-dir DIR --model MODEL_DIR --out DIR`: the embeddings x tasks grid."""

from __future__ import annotations

import argparse

from mediafm.cli._probe import add_probe_options, probe_config
from mediafm.evaluation.clips import EMBEDDING_KINDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--labels-dir", required=True, metavar="DIR",
                   help="folder with genre.csv, tone.csv, ad_relevancy.csv, popularity.csv, retrieval.csv")
    p.add_argument("--out", required=True, metavar="DIR", help="where eval.md and eval.json go")
    p.add_argument("--embeddings", default=",".join(EMBEDDING_KINDS), help="comma-separated rows (default: all)")
    add_probe_options(p, embedding=False, metric=False)


def run(args: argparse.Namespace) -> int:
    from mediafm.errors import ConfigError
    from mediafm.evaluation.grid import run_grid, write_reports

    kinds = tuple(k.strip() for k in args.embeddings.split(",") if k.strip())
    bad = [k for k in kinds if k not in EMBEDDING_KINDS]
    if bad:
        raise ConfigError(None, f"unknown embeddings {bad}; choose from {', '.join(EMBEDDING_KINDS)}")
    grid = run_grid(args.store, args.labels_dir, args.model, kinds, pooling=args.pooling, config=probe_config(args))
    md, js = write_reports(grid, args.out)
    print(grid.to_markdown())
    print(f"wrote {md} and {js}")
    return 0
