"""`mediafm ingest PATH... --out STORE`: decode titles, detect shots, attach subtitles, write the store."""

from __future__ import annotations

import argparse
import sys

from mediafm.cli.numbers import count, number
from mediafm.devices import DEVICE_HELP
from mediafm.ingest.config import IngestConfig

_DEFAULTS = IngestConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="title files or folders (searched recursively)")
    parser.add_argument("--out", required=True, metavar="STORE", help="catalog store folder (created if missing)")
    parser.add_argument("--detector", default=_DEFAULTS.detector,
                        help=f"shot detector (default: {_DEFAULTS.detector}; see `mediafm shots --help`)")
    parser.add_argument("--frames-per-shot", type=count(1), default=_DEFAULTS.frames_per_shot, metavar="K",
                        help=f"frames sampled per shot (default: {_DEFAULTS.frames_per_shot})")
    parser.add_argument("--audio-window", type=number(above=0), default=_DEFAULTS.audio_window_s, metavar="S",
                        help=f"audio-only titles: window length in seconds (default: {_DEFAULTS.audio_window_s:g})")
    parser.add_argument("--no-subtitles", action="store_true", help="do not attach subtitle text")
    parser.add_argument("--no-encode", action="store_true", help="skip the encoders (run `mediafm encode` later)")
    parser.add_argument("--skip-loop-filter", action="store_true",
                        help="decode without the codec's in-loop deblocking filter: less CPU at 1080p/4K, "
                             "frames slightly off (docs/ingest.md)")
    parser.add_argument("--device", default=_DEFAULTS.device,
                        help=f"where the shot detector and encoders run: {DEVICE_HELP}")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (default, no Ray needed) or ray (pip install 'mediafm[ray]')")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    parser.add_argument("--workers", type=count(1), default=None, metavar="N",
                        help="Ray CPUs for a local Ray instance (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-title warnings")


def run(args: argparse.Namespace) -> int:
    from mediafm.ingest import Outcome, ingest

    config = _DEFAULTS.with_overrides(detector=args.detector, frames_per_shot=args.frames_per_shot,
                                      audio_window_s=args.audio_window,
                                      subtitles=False if args.no_subtitles else None, device=args.device,
                                      loop_filter=False if args.skip_loop_filter else None)

    def show(o: Outcome) -> None:
        # Warnings go to stderr as each title finishes; the summary lists the failures again.
        if args.quiet:
            return
        for w in o.warnings:
            _write(f"warning: {o.path}: {w}")
        if o.status == "failed":
            _write(f"failed: {o.path}: [{o.stage}] {o.error}")

    report = ingest(args.paths, args.out, config, encode=not args.no_encode, engine=args.engine,
                    address=args.address, workers=args.workers, show_progress=not args.quiet,
                    on_outcome=show)
    print(report.summary())
    # 1 when a title failed or the encoders were asked for and did not run; all else is kept.
    return 1 if report.failed or report.encode_error else 0


def _write(line: str) -> None:
    # tqdm.write keeps the progress bars intact while printing above them.
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
