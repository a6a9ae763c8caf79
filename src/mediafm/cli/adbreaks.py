"""`mediafm adbreaks STORE --head HEAD_DIR --out FILE`: scored ad-break points between shots."""

from __future__ import annotations

import argparse

from mediafm.cli import _apps
from mediafm.cli.numbers import count, number

_B = _apps.BREAKS


def add_arguments(p: argparse.ArgumentParser) -> None:
    _apps.add_common(p)
    p.add_argument("--head", required=True, metavar="HEAD_DIR", help="head scoring the clip before a cut (e.g. ad relevancy)")
    p.add_argument("--class", dest="klass", metavar="CLASS", help="class to score by (multiclass / multilabel heads)")
    p.add_argument("--min-spacing", type=number(minimum=0), default=_B.min_spacing_s,
                   help=f"seconds between breaks at least (default: {_B.min_spacing_s:g})")
    p.add_argument("--min-score", type=number(), help="lowest score of a break (default: the head's best-F1 CV threshold)")
    p.add_argument("--max-breaks", type=count(1), help="breaks per title at most (default: no limit)")
    p.add_argument("--clip-s", type=number(above=0), help="length of the clip scored before each cut (default: the head's median)")
    p.add_argument("--all-cuts", action="store_true", help="write every cut with its score and flags, not just the breaks")


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.apply import break_candidates
    from mediafm.apps.breaks import BreakConfig
    from mediafm.apps.tables import check_output

    check_output(args.out)
    cfg = BreakConfig(args.min_spacing, args.min_score, args.max_breaks, args.clip_s)
    df = break_candidates(args.store, args.head, args.titles, cfg, args.klass, args.model)
    chosen = df[df["chosen"]].drop(columns=["allowed", "chosen"]).reset_index(drop=True)
    if not df.empty and not df["cues_known"].all():
        n = df.loc[~df["cues_known"], "title"].nunique()
        print(f"note: {n} titles have no known subtitle cues; no break was placed between two shots with text",
              flush=True)
    _apps.finish(df if args.all_cuts else chosen, args.out, "cuts" if args.all_cuts else "breaks")
    return 0
