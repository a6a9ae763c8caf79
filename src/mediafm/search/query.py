"""Query functions: shots like a shot, like a clip, or matching a sentence. Results are `Hit`s."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mediafm.errors import ConfigError, StoreError
from mediafm.linalg import l2_normalize
from mediafm.search.hit import Hit
from mediafm.search.index import ShotIndex, title_vectors
from mediafm.search.text_match import TextEncoder, TextSearchConfig, default_text_encoder
from mediafm.search.text_index import TextIndex
from mediafm.store.catalog import Store

_SHOT_SPEC = re.compile(r"^(?P<title>.+):(?P<index>\d+)$")
_CLIP_SPEC = re.compile(r"^(?P<title>.+):(?P<start>\d+(?:\.\d+)?)-(?P<end>\d+(?:\.\d+)?)$")


def parse_shot_spec(spec: str) -> tuple[str, int]:
    """'TITLE:INDEX' -> (title, index)."""
    m = _SHOT_SPEC.match(spec)
    if not m:
        raise ConfigError(None, f"--shot expects TITLE:INDEX, got {spec!r}")
    return m["title"], int(m["index"])


def parse_clip_spec(spec: str) -> tuple[str, float, float]:
    """'TITLE:START-END' (seconds) -> (title, start, end)."""
    m = _CLIP_SPEC.match(spec)
    if not m or float(m["end"]) <= float(m["start"]):
        raise ConfigError(None, f"--clip expects TITLE:START-END in seconds with END > START, got {spec!r}")
    return m["title"], float(m["start"]), float(m["end"])


class ShotTable:
    """Turns (title, shot) into times and text, and gives a title's unit vectors; reads the store
    once per title. A query builds one; a long-lived reader (the explorer) keeps a bounded one."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, pd.DataFrame] = {}

    def get(self, title_id: str) -> pd.DataFrame:
        if title_id not in self._cache:
            self._cache[title_id] = self.store.shots(title_id)
        return self._cache[title_id]

    def hit(self, title_id: str, shot_index: int, score: float) -> Hit:
        row = self.get(title_id).iloc[shot_index]
        return Hit(title_id, int(shot_index), float(row["start_s"]), float(row["end_s"]), float(score),
                   str(row["text"] or ""))

    def vectors(self, title_id: str, embedding: str, model_id: str | None) -> np.ndarray:
        return title_vectors(self.store, title_id, embedding, model_id)


def _check_title(store: Store, index: ShotIndex, title_id: str) -> None:
    if not store.has_title(title_id):
        raise StoreError(store.root, f"no title {title_id!r} in the store")
    if title_id not in index.info.titles:
        raise StoreError(store.root, f"title {title_id!r} has no {index.info.embedding} embeddings in the index")


def search_shot(store: Store, index: ShotIndex, title_id: str, shot_index: int, k: int = 10,
                table: ShotTable | None = None) -> list[Hit]:
    """The k shots nearest to one shot; the shot itself always comes first (score = 1)."""
    _check_title(store, index, title_id)
    table = table if table is not None else ShotTable(store)
    query = index.stored_vector(title_id, shot_index)
    if query is None:
        vectors = table.vectors(title_id, index.info.embedding, index.info.model_id)
        if not 0 <= shot_index < len(vectors):
            raise StoreError(store.root, f"title {title_id!r} has {len(vectors)} shots; no shot {shot_index}")
        query = vectors[shot_index]
    found = index.search(query, k + 1)[0]
    # An approximate index may miss the query itself or tie it with duplicates: put it first.
    others = [(t, s, sc) for t, s, sc in found if (t, s) != (title_id, shot_index)]
    self_score = float(query @ query)
    return [table.hit(title_id, shot_index, self_score)] + [table.hit(*f) for f in others[: k - 1]]


def clip_vector(store: Store, index: ShotIndex, title_id: str, start_s: float, end_s: float) -> np.ndarray:
    """A clip's embedding: the duration-weighted mean of the unit vectors of the shots it overlaps."""
    _check_title(store, index, title_id)
    shots = store.shots(title_id)
    overlap = (np.minimum(shots["end_s"].to_numpy(float), end_s) - np.maximum(shots["start_s"].to_numpy(float), start_s))
    weights = np.clip(overlap, 0.0, None)
    if weights.sum() <= 0:
        raise StoreError(store.root, f"clip {start_s}-{end_s} s overlaps no shot of {title_id!r}")
    vectors = title_vectors(store, title_id, index.info.embedding, index.info.model_id)
    return l2_normalize((weights[:, None] * vectors).sum(axis=0, keepdims=True))[0]


def search_clip(store: Store, index: ShotIndex, title_id: str, start_s: float, end_s: float, k: int = 10) -> list[Hit]:
    """The k shots nearest to a clip (a time span of a title)."""
    q = clip_vector(store, index, title_id, start_s, end_s)
    table = ShotTable(store)
    return [table.hit(*f) for f in index.search(q, k)[0]]


def search_text(store: Store, query: str, k: int = 10, encoder: TextEncoder | None = None,
                config: TextSearchConfig | None = None, frame_encoder=None,
                frame_scale: float = 2.5) -> list[Hit]:
    """Shots whose subtitle/ASR text or encoder tags match a sentence (see search/text_match.py).

    Builds a `TextIndex` of the store for this one query (shot-text embeddings come from the
    store's cache, and are added to it); a long-lived reader keeps one `TextIndex` instead.

    `frame_encoder`: an image-text model with `encode_text` whose image embeddings are the store's
    `video` features (user-supplied CLIP weights); its cosine, times `frame_scale` (CLIP's
    image-text cosines sit around 0.2-0.35, text-text ones around 0.5-0.8), joins the max.
    """
    query = query.strip()
    if not query:
        raise ConfigError(None, "empty text query")
    index = TextIndex(encoder or default_text_encoder(), config, persist=True, frames=frame_encoder is not None)
    index.refresh(store)
    fvec = np.asarray(frame_encoder.encode_text([query]), np.float32)[0] if frame_encoder else None
    return index.search(query, k, frame_vector=fvec, frame_scale=frame_scale)
