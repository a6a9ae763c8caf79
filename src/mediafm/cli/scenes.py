"""`mediafm scenes STORE --out FILE`: group shots into scenes (unsupervised, or a scene head)."""

from __future__ import annotations

import argparse

from mediafm.apps.segmentation import DEFAULT_WINDOW
from mediafm.cli import _apps
from mediafm.cli.numbers import count, number
from mediafm.types import MODALITIES


def add_arguments(p: argparse.ArgumentParser) -> None:
    _apps.add_common(p, "scene table: .csv, .parquet or .json")
    p.add_argument("--embedding", choices=("fused", "contextual", *MODALITIES),
                   help="unsupervised: embedding to segment (default: contextual if the store has it, else fused)")
    p.add_argument("--head", metavar="HEAD_DIR", help="a scene head from `mediafm fit --task scenes`")
    p.add_argument("--window", type=count(1), default=DEFAULT_WINDOW,
                   help=f"unsupervised: shots on each side of a cut (default: {DEFAULT_WINDOW})")
    p.add_argument("--threshold", type=number(),
                   help="boundary score threshold (default: the head's CV threshold, or TextTiling's cutoff)")
    p.add_argument("--cuts", action="store_true", help="write every cut with its boundary score, not the scenes")


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.apply import scene_cuts, scenes
    from mediafm.apps.tables import check_output

    check_output(args.out)
    if args.cuts:
        df = scene_cuts(args.store, args.titles, args.head, args.embedding, args.model, args.window, args.threshold)
        _apps.finish(df, args.out, "cuts")
        return 0
    df = scenes(args.store, args.titles, args.head, args.embedding, args.model, args.window, args.threshold)
    per = df.groupby("title").size()
    _apps.finish(df, args.out, f"scenes of {len(per)} titles (median {per.median():.0f} per title)" if len(per) else "scenes")
    return 0
