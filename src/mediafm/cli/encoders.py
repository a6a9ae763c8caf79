"""`mediafm encoders`: the registered encoders, whether they can run here, dims and licences."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    from mediafm.encoders import available_encoders

    rows = available_encoders()
    if args.format == "json":
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    header = ("modality", "name", "dim", "default", "ready", "tags", "licence", "package / note")
    table = [header] + [(r.modality, r.name, str(r.dim or "-"), "*" if r.default else "",
                         "yes" if r.available else "no", "yes" if r.has_tags else "",
                         r.license.split(" (")[0] or "-", r.package + (f"  [{r.reason}]" if r.reason else ""))
                        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0
