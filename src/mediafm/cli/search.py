"""`mediafm search STORE --shot T:I | --text Q | --clip T:S-E`: nearest shots across the catalog."""

from __future__ import annotations

import argparse
import json
import sys

from mediafm.cli.numbers import count
from mediafm.search.hit import Hit
from mediafm.search.index import EMBEDDINGS, IndexConfig, open_index
from mediafm.search.query import (
    parse_clip_spec,
    parse_shot_spec,
    search_clip,
    search_shot,
    search_text,
)
from mediafm.store.catalog import Store

_D = IndexConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store folder")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--shot", metavar="TITLE:INDEX", help="shots like this shot (it comes first)")
    q.add_argument("--text", metavar="QUERY", help="shots whose subtitles/ASR text or tags match")
    q.add_argument("--clip", metavar="TITLE:START-END", help="shots like this time span (seconds)")
    p.add_argument("--k", type=count(1), default=10, help="number of results (default %(default)s)")
    p.add_argument("--embedding", choices=EMBEDDINGS, default=_D.embedding, help="for --shot/--clip")
    p.add_argument("--model", default=_D.model_id, help="contextual model id (default: the store's only model)")
    p.add_argument("--clip-weights", metavar="DIR", default=None,
                   help="user-supplied CLIP weights whose image embeddings are the store's video features: "
                        "--text then also matches frames")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _frame_encoder(store: Store, weights_dir: str | None):
    """The CLIP model whose image tower produced the store's video features, for its text tower."""
    if not weights_dir:
        return None
    from mediafm.encoders import get_encoder
    from mediafm.errors import ConfigError

    name = store.check_encoders().get("video", {}).get("name")
    if name != "clip":
        raise ConfigError(weights_dir, f"the store's video features come from {name!r}, not CLIP; "
                          "re-encode with the clip video encoder to match text against frames")
    return get_encoder("video", "clip", weights_dir=weights_dir)


def format_table(hits: list[Hit]) -> str:
    lines = [f"{'rank':>4}  {'score':>6}  {'title':<24} {'shot':>5}  {'start':>8}  {'end':>8}  text"]
    for r, h in enumerate(hits, 1):
        text = h.text.replace("\n", " ")
        lines.append(f"{r:>4}  {h.score:6.3f}  {h.title_id[:24]:<24} {h.shot_index:>5}  {h.start_s:8.2f}  {h.end_s:8.2f}  "
                     f"{text[:60]}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    store = Store(args.store)
    if args.k < 1:
        from mediafm.errors import ConfigError

        raise ConfigError(None, "--k must be >= 1")
    if args.text is not None:
        hits = search_text(store, args.text, k=args.k, frame_encoder=_frame_encoder(store, args.clip_weights))
    else:
        index = open_index(store, IndexConfig(embedding=args.embedding, model_id=args.model))
        if args.shot:
            hits = search_shot(store, index, *parse_shot_spec(args.shot), k=args.k)
        else:
            hits = search_clip(store, index, *parse_clip_spec(args.clip), k=args.k)
    if args.format == "json":
        json.dump([h.to_dict() for h in hits], sys.stdout, indent=2)
        print()
    else:
        print(format_table(hits))
    return 0
