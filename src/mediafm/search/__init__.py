"""Similarity search over the catalog: a FAISS vector index of shot embeddings and query functions.

    from mediafm.search import IndexConfig, open_index, search_shot, search_text
    index = open_index(store, IndexConfig(embedding="fused"))   # builds/updates STORE/index/fused/
    hits = search_shot(store, index, "montage", 3, k=10)
"""

from mediafm.search.index import IndexConfig, IndexInfo, ShotIndex, open_index, update_index
from mediafm.search.hit import Hit
from mediafm.search.query import parse_clip_spec, parse_shot_spec, search_clip, search_shot, search_text

__all__ = [
    "Hit", "IndexConfig", "IndexInfo", "ShotIndex", "open_index", "parse_clip_spec", "parse_shot_spec",
    "search_clip", "search_shot", "search_text", "update_index",
]
