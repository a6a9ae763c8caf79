"""`mediafm` entry point.

Each subcommand lives in `mediafm.cli.<module>` and defines `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only for the subcommand that runs, so `mediafm --help`
stays fast and a broken optional dependency cannot break unrelated commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mediafm import __version__
from mediafm.errors import MediafmError

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "synthesise a small catalog and run the whole pipeline end to end"),
    "shots": ("shots", "detect the shots of one video and print them"),
    "ingest": ("ingest", "decode titles, detect shots, attach subtitles, write the catalog store"),
    "encoders": ("encoders", "list the installed encoders with dims and licences"),
    "encode": ("encode", "(re)compute per-shot video/audio/text embeddings and fused vectors"),
    "pretrain": ("pretrain", "pretrain the contextual model by masked shot modeling"),
    "embed": ("embed", "write contextual shot embeddings into the store"),
    "synth": ("synth", "render a synthetic narrative catalog with labels"),
    "probe": ("probe", "linear probe of frozen embeddings on a labelled task"),
    "eval": ("eval", "run the comparison grid of embeddings x tasks"),
    "fit": ("fit", "train a probe head on labelled clips and save it"),
    "predict": ("predict", "score given or proposed clips of titles with a saved head"),
    "tag": ("tag", "label clips or shots with a classification head"),
    "clips": ("clips", "the top clips of each title by a head's score"),
    "adbreaks": ("adbreaks", "scored ad-break points between shots"),
    "scenes": ("scenes", "group shots into scenes"),
    "index": ("index", "build or update the vector index over the store"),
    "search": ("search", "find shots by shot, clip or text"),
    "serve": ("serve", "serve the JSON API and the web explorer"),
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line (argparse prints the whole usage first,
    which buries the problem under a screen of options)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = _Parser(prog="mediafm", description="Contextual shot embeddings for long-form video.")
    parser.add_argument("--version", action="version", version=f"mediafm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"mediafm.cli.{module}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    parser = _build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(f"mediafm.cli.{COMMANDS[args.command][0]}")
    try:
        return int(module.run(args) or 0)
    except MediafmError as exc:
        return _fail(args.command, str(exc))
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args.command, f"{where}{exc.strerror or type(exc).__name__}")
    except KeyboardInterrupt:
        print(f"mediafm {args.command}: interrupted (finished work is kept; re-run to resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        # Not an error about an input we know of: a defect. One line here; -v shows the traceback.
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return _fail(args.command, f"internal error ({type(exc).__name__}: {first}); "
                                   f"run with -v for the traceback and please report it")


def _fail(command: str, message: str) -> int:
    print(f"mediafm {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
