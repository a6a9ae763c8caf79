"""`mediafm tag STORE --head HEAD_DIR --out FILE`: labels per clip or per shot above CV thresholds."""

from __future__ import annotations

import argparse

from mediafm.cli import _apps
from mediafm.cli.numbers import number


def add_arguments(p: argparse.ArgumentParser) -> None:
    _apps.add_common(p)
    p.add_argument("--head", required=True, metavar="HEAD_DIR", help="a classification head saved by `mediafm fit`")
    p.add_argument("--per", default="clip", choices=("clip", "shot"), help="tag clips (default) or single shots")
    p.add_argument("--clips", metavar="CSV", help="clips to tag (title,start,end); default: propose candidates")
    p.add_argument("--threshold", type=number(),
                   help="one score threshold for every class (default: each class's best-F1 threshold on CV scores)")
    _apps.add_proposal(p)


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.apply import tag
    from mediafm.apps.tables import check_output, preview, write_table

    check_output(args.out)
    df = tag(args.store, args.head, args.titles, _apps.read_clips_arg(args.clips), args.per, _apps.proposal_from(args),
             args.threshold, args.model, clips_source=args.clips)
    path = write_table(df, args.out)
    print(preview(df[["title", "start", "end", "tags"]]))
    tagged = df["tags"].str.len() > 0
    print(f"{int(tagged.sum())} of {len(df)} {args.per}s tagged; table with scores written to {path}")
    return 0
