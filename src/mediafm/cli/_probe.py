"""Probe options shared by `probe`, `fit` and `eval`; not a subcommand. Defaults come from
`ProbeConfig` (the probe) and `ClipEmbedder` (the embedding and pooling of clips)."""

from __future__ import annotations

import argparse

from mediafm.cli.numbers import count
from mediafm.evaluation.clips import EMBEDDING_KINDS, ClipEmbedder, pooling_names
from mediafm.evaluation.metrics import METRICS
from mediafm.evaluation.probes import DEFAULT_METRIC, PROBES, ProbeConfig

_P = ProbeConfig()


def add_probe_options(p: argparse.ArgumentParser, embedding: bool = True, metric: bool = True) -> None:
    """The options of a cross-validated probe. `eval` leaves out `embedding` and `metric`: it runs
    every embedding kind, each task with its own metric."""
    g = p.add_argument_group("probe")
    if embedding:
        g.add_argument("--embedding", default=ClipEmbedder.kind, choices=EMBEDDING_KINDS,
                       help=f"default: {ClipEmbedder.kind}")
    g.add_argument("--model", metavar="MODEL_DIR",
                   help="model directory (contextual kinds; default: the store's only model)")
    if metric:
        by_task = ", ".join(f"{m} ({k})" for k, m in DEFAULT_METRIC.items())
        g.add_argument("--metric", choices=sorted(METRICS), help=f"CV metric (default by task: {by_task})")
    g.add_argument("--pooling", default=ClipEmbedder.pooling, choices=pooling_names(),
                   help=f"shots -> clip; NAME+cuts also appends how much changes across the cuts before and after "
                        f"the clip (evaluation.clips.cut_distances), NAME+edges also its last shot and the change "
                        f"across the cut after it (evaluation.clips.edge_readout), NAME+near+cuts also the mean of the shots "
                        f"around the clip (evaluation.clips.near_readout) (default: {ClipEmbedder.pooling})")
    g.add_argument("--head", default=_P.head, choices=sorted(PROBES), help=f"probe head (default: {_P.head})")
    g.add_argument("--folds", type=count(2), default=_P.folds,
                   help=f"outer CV folds, grouped by title (default: {_P.folds})")
    g.add_argument("--n-boot", type=count(0), default=_P.n_boot,
                   help=f"bootstrap resamples of titles for the CI (default: {_P.n_boot})")
    g.add_argument("--seed", type=int, default=_P.seed, help=f"seed of the folds and the bootstrap (default: {_P.seed})")


def probe_config(args: argparse.Namespace) -> ProbeConfig:
    return ProbeConfig(head=args.head, folds=args.folds, n_boot=args.n_boot, seed=args.seed)
