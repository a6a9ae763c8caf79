"""Arguments and printing shared by the application commands (fit, predict, tag, clips, adbreaks,
scenes); not a subcommand. Defaults come from the library's config dataclasses."""

from __future__ import annotations

import argparse
import sys

from mediafm.apps.breaks import BreakConfig
from mediafm.apps.proposals import ProposalConfig
from mediafm.cli.numbers import number

_P = ProposalConfig()
BREAKS = BreakConfig()


def add_common(p: argparse.ArgumentParser, out_help: str = "result table: .csv, .parquet or .json") -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--out", required=True, metavar="FILE", help=out_help)
    p.add_argument("--titles", nargs="+", metavar="TITLE", help="titles to work on (default: every encoded title)")
    p.add_argument("--model", metavar="MODEL_DIR",
                   help="the model a contextual head was trained with (default: the store's stored embeddings)")


def add_proposal(p: argparse.ArgumentParser, overlap: bool = True) -> None:
    g = p.add_argument_group("candidate clips (runs of whole shots)")
    g.add_argument("--min-s", type=number(minimum=0), help="shortest clip in seconds (default: the head's shortest training clip)")
    g.add_argument("--max-s", type=number(above=0), help="longest clip in seconds (default: the head's longest training clip)")
    if overlap:
        g.add_argument("--max-overlap", type=number(minimum=0, maximum=1), default=_P.max_overlap,
                       help=f"drop a candidate overlapping a kept one by more than this IoU (default: {_P.max_overlap})")
    g.add_argument("--within-scenes", action="store_true", help="never cross a scene boundary (unsupervised scenes)")


def proposal_from(args: argparse.Namespace) -> ProposalConfig:
    return ProposalConfig(args.min_s, args.max_s, getattr(args, "max_overlap", _P.max_overlap), args.within_scenes)


def read_clips_arg(path: str | None):
    if path is None:
        return None
    from mediafm.evaluation.labels import read_clips

    return read_clips(path)


def finish(df, out: str, what: str, rows: int = 12) -> None:
    """Write the table, print its first rows and where it went."""
    from mediafm.apps.tables import preview, write_table

    path = write_table(df, out)
    print(preview(df, rows))
    print(f"{len(df)} {what} written to {path}", file=sys.stderr)

