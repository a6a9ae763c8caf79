"""`mediafm synth CATALOG_DIR --titles N --seed S [--preset long]`: render a synthetic catalog with labels."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from mediafm.cli.numbers import count
from mediafm.errors import ConfigError
from mediafm.synth.render import RenderConfig
from mediafm.synth.story import STORY_PRESETS

_RENDER = RenderConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", metavar="CATALOG_DIR", help="output folder (videos/, labels/, truth/, catalog.json)")
    p.add_argument("--titles", type=count(1), default=24, help="number of titles (default 24)")
    p.add_argument("--seed", type=int, default=0, help="catalog seed (default 0)")
    p.add_argument("--preset", default="narrative", choices=sorted(STORY_PRESETS),
                   help="catalog kind: narrative (15-40 shots, hard cuts; default) or long (150-600 shots, "
                        "some dissolves and fades)")
    p.add_argument("--workers", type=count(1), default=min(2, os.cpu_count() or 1), help="render processes")
    # Unset story flags keep the preset's value (the StoryConfig it names is the one source of defaults).
    p.add_argument("--fps", type=count(1), default=None, help="frame rate (default: the preset's)")
    p.add_argument("--max-scenes", type=count(1), default=None, help="scenes per title, at most (default: the preset's)")
    p.add_argument("--width", type=count(16), default=_RENDER.width)
    p.add_argument("--height", type=count(16), default=_RENDER.height)


def check_folder(path: str) -> None:
    """An output folder that can be made: not a file, and not under a file."""
    p = Path(path)
    for parent in (p, *p.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(parent, "not a folder (the output goes into a folder)")
            break


def story_config(args: argparse.Namespace):
    """The preset's StoryConfig with the story flags that were given applied over it."""
    base = STORY_PRESETS[args.preset]
    over: dict = {}
    if args.fps is not None:
        over["fps"] = args.fps
    if args.max_scenes is not None:
        if args.max_scenes < 1:
            raise ConfigError(None, "--max-scenes must be at least 1")
        over.update(max_scenes=args.max_scenes, min_scenes=min(base.min_scenes, args.max_scenes))
    try:
        return dataclasses.replace(base, **over)
    except ValueError as e:
        raise ConfigError(None, str(e)) from None


def run(args: argparse.Namespace) -> int:
    from mediafm.synth.render import synthesize_catalog

    check_folder(args.catalog)
    info = synthesize_catalog(args.catalog, args.titles, args.seed, story_config(args),
                              RenderConfig(width=args.width, height=args.height), workers=args.workers,
                              preset=args.preset)
    print(f"{len(info.titles)} titles in {info.videos} ({info.seconds:.1f} s); labels in {info.labels}")
    print(f"next: mediafm ingest {info.videos} --out STORE")
    return 0
