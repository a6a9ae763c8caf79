"""`mediafm predict STORE --head HEAD_DIR --out FILE`: score given or proposed clips of titles."""

from __future__ import annotations

import argparse

from mediafm.cli import _apps


def add_arguments(p: argparse.ArgumentParser) -> None:
    _apps.add_common(p)
    p.add_argument("--head", required=True, metavar="HEAD_DIR", help="a head saved by `mediafm fit`")
    p.add_argument("--clips", metavar="CSV", help="clips to score (title,start,end); default: propose candidates")
    _apps.add_proposal(p)


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.apply import predict
    from mediafm.apps.tables import check_output

    check_output(args.out)
    df = predict(args.store, args.head, args.titles, _apps.read_clips_arg(args.clips), _apps.proposal_from(args),
                 args.model, clips_source=args.clips)
    _apps.finish(df, args.out, "clips")
    return 0
