"""`mediafm clips STORE --rank HEAD_DIR --out FILE`: the top-k non-overlapping clips of each title."""

from __future__ import annotations

import argparse

from mediafm.cli import _apps
from mediafm.cli.numbers import count


def add_arguments(p: argparse.ArgumentParser) -> None:
    _apps.add_common(p)
    p.add_argument("--rank", required=True, metavar="HEAD_DIR", help="head whose score ranks clips (e.g. popularity)")
    p.add_argument("--class", dest="klass", metavar="CLASS", help="class to rank by (multiclass / multilabel heads)")
    p.add_argument("-k", type=count(1), default=3, help="clips per title (default: 3)")
    _apps.add_proposal(p, overlap=False)


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.apply import top_clips
    from mediafm.apps.tables import check_output

    check_output(args.out)
    df = top_clips(args.store, args.rank, args.titles, args.k, args.klass, _apps.proposal_from(args), args.model)
    _apps.finish(df, args.out, "clips")
    return 0
