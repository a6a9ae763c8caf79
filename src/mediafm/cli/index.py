"""`mediafm index STORE`: build or incrementally update the vector index under STORE/index/, and
cache the shots' text embeddings for text search (so `mediafm serve` need not compute them)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from mediafm.cli.numbers import count, number
from mediafm.search.index import EMBEDDINGS, IndexConfig, update_index
from mediafm.store.catalog import Store
from mediafm.store.lock import store_lock

_D = IndexConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store folder")
    p.add_argument("--embedding", choices=EMBEDDINGS, default=_D.embedding, help="which shot embeddings to index")
    p.add_argument("--model", default=_D.model_id, help="contextual model id (default: the store's only model)")
    p.add_argument("--exact-max", type=count(0), default=_D.exact_max,
                   help="exact search up to this many vectors, IVF above (default %(default)s)")
    p.add_argument("--target-recall", type=number(above=0, maximum=1), default=_D.target_recall,
                   help="IVF nprobe is raised until sampled recall@10 reaches this (default %(default)s)")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch instead of updating")
    p.add_argument("--no-text", action="store_true", help="do not cache the shots' text embeddings")


def run(args: argparse.Namespace) -> int:
    store = Store(args.store)
    config = IndexConfig(embedding=args.embedding, model_id=args.model, exact_max=args.exact_max,
                         target_recall=args.target_recall)
    with store_lock(store.root, "mediafm index"):
        info = update_index(store, config, progress=True, rebuild=args.rebuild)
        summary = {k: v for k, v in asdict(info).items() if k != "titles"}
        summary["n_titles"] = len(info.titles)
        if not args.no_text:
            from mediafm.search.text_match import default_text_encoder
            from mediafm.search.text_index import TextIndex

            text = TextIndex(default_text_encoder(), persist=True)
            text.refresh(store)
            summary["text_shots"] = len(text)
    print(json.dumps(summary, indent=2))
    return 0
