"""`mediafm synth CATALOG_DIR --titles N --seed S`: render a synthetic narrative catalog with labels."""

from __future__ import annotations

import argparse
import os

from mediafm.errors import ConfigError
from mediafm.synth.render import RenderConfig
from mediafm.synth.story import StoryConfig

_STORY, _RENDER = StoryConfig(), RenderConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", metavar="CATALOG_DIR", help="output folder (videos/, labels/, truth/, catalog.json)")
    p.add_argument("--titles", type=int, default=24, help="number of titles (default 24)")
    p.add_argument("--seed", type=int, default=0, help="catalog seed (default 0)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="render processes")
    p.add_argument("--fps", type=int, default=_STORY.fps, help=f"frame rate (default {_STORY.fps})")
    p.add_argument("--max-scenes", type=int, default=_STORY.max_scenes, help="scenes per title, at most")
    p.add_argument("--width", type=int, default=_RENDER.width)
    p.add_argument("--height", type=int, default=_RENDER.height)


def run(args: argparse.Namespace) -> int:
    from mediafm.synth.render import synthesize_catalog

    if args.titles < 1:
        raise ConfigError(None, "--titles must be at least 1")
    min_scenes = min(_STORY.min_scenes, args.max_scenes)
    story = StoryConfig(fps=args.fps, min_scenes=min_scenes, max_scenes=args.max_scenes)
    info = synthesize_catalog(args.catalog, args.titles, args.seed, story,
                              RenderConfig(width=args.width, height=args.height), workers=args.workers)
    print(f"{len(info.titles)} titles in {info.videos} ({info.seconds:.1f} s); labels in {info.labels}")
    print(f"next: mediafm ingest {info.videos} --out STORE")
    return 0
