"""`mediafm shots VIDEO [--detector NAME] [--threshold X] [--format json|table]`: print the shots."""

from __future__ import annotations

import argparse
import json

from mediafm.cli.numbers import number
from mediafm.shots.adaptive import AdaptiveConfig
from mediafm.shots.transnetv2 import TransNetV2Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="video file")
    parser.add_argument("--detector", default="transnetv2",
                        help="shot detector: transnetv2 (default) or adaptive (alias fast)")
    parser.add_argument("--threshold", type=number(above=0), default=None, metavar="X",
                        help=f"detection threshold (default: the detector's own: transnetv2 "
                             f"{TransNetV2Config.threshold:g}, adaptive {AdaptiveConfig.threshold:g})")
    parser.add_argument("--format", choices=("json", "table"), default="table", help="output format (default: table)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from mediafm.shots import detect_shots, get_detector

    kwargs = {} if args.threshold is None else {"threshold": args.threshold}
    detector = get_detector(args.detector, **kwargs)
    shots = detect_shots(args.video, detector, show_progress=not args.quiet)
    if args.format == "json":
        print(json.dumps({"video": args.video, "detector": detector.name, "shots": [s.to_dict() for s in shots]},
                         indent=2))
    else:
        print(f"{'index':>5} {'start_frame':>11} {'end_frame':>9} {'start_s':>9} {'end_s':>9}")
        for s in shots:
            print(f"{s.index:>5} {s.start_frame:>11} {s.end_frame:>9} {s.start_s:>9.3f} {s.end_s:>9.3f}")
    return 0
