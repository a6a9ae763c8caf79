"""The catalog's text, tags and text embeddings in memory, for text queries (scoring: search/text_match.py).

Built once from the store and refreshed per title when a title's shots or features file changes;
a query then never reads a file: one encoder call for the query (cached for repeated queries),
a matrix-vector product over every shot's text vector, one over the tag vocabulary, and an
inverted word index for the lexical term. Memory: 4 * D bytes per shot with text (1.5 KB at
MiniLM's 384-d), plus the shots' text.

Thread-safe: `refresh` builds new arrays and swaps them in whole, so a query running at the same
time sees the old catalog or the new one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from mediafm.linalg import l2_normalize
from mediafm.search.hit import Hit
from mediafm.search.text_match import TextEncoder, TextSearchConfig, shot_text_vectors, words
from mediafm.store.catalog import Store, read_table

QUERY_CACHE = 512  # query vectors remembered (the explorer repeats queries as users page and refine)


@dataclass
class _Title:
    """One title's part of the index, as read from the store."""

    signature: tuple
    texts: list[str]
    tags: list[list[str]]
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray  # [n, D] unit rows, zero where a shot has no text
    frames: np.ndarray | None = None  # [n, Dv] unit `video` features (image-text search only)


@dataclass
class _Arrays:
    """The whole catalog, concatenated in title order."""

    title_ids: np.ndarray  # object [N]
    shot_index: np.ndarray  # int64 [N]
    starts: np.ndarray
    ends: np.ndarray
    texts: list[str]
    text_vectors: np.ndarray  # [N, D]
    has_text: np.ndarray  # bool [N]: text present and embedded at the query encoder's size
    tag_names: list[str]
    tag_vectors: np.ndarray  # [T, D]
    tag_ptr: np.ndarray  # [N + 1]: shot i's tags are tag_ids[tag_ptr[i]:tag_ptr[i + 1]]
    tag_ids: np.ndarray
    word_shots: dict[str, np.ndarray]  # content word -> shots whose text or tags contain it
    frames: np.ndarray | None


def _signature(store: Store, title_id: str) -> tuple:
    out = []
    for table in ("shots", "features"):
        f = store.table_file(table, title_id)
        try:
            st = f.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


class TextIndex:
    """Text search over a store's shots, held in memory (see the module docstring).

    Args:
        encoder: the text encoder for shot texts, tag names and queries.
        config: scoring weights.
        persist: write shot-text embeddings that were not cached to the store (readers pass False).
        frames: also hold each shot's `video` features, for image-text (CLIP) queries.
    """

    def __init__(self, encoder: TextEncoder, config: TextSearchConfig | None = None, *, persist: bool = False,
                 frames: bool = False):
        self.encoder = encoder
        self.config = config if config is not None else TextSearchConfig()
        self.persist = persist
        self.frames = frames
        self._titles: dict[str, _Title] = {}
        self._tag_vectors: dict[str, np.ndarray] = {}
        self._arrays: _Arrays | None = None
        self._refresh_lock = threading.Lock()
        # At most one encoder call per core at a time: more only queue inside onnxruntime.
        self._encoding = threading.BoundedSemaphore(os.cpu_count() or 1)
        self._queries_lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ building
    def refresh(self, store: Store) -> bool:
        """Bring the index up to date with the store's titles; True if anything changed."""
        with self._refresh_lock:
            wanted = {tid: _signature(store, tid) for tid in store.title_ids()}
            changed = [t for t, sig in wanted.items() if t not in self._titles or self._titles[t].signature != sig]
            gone = [t for t in self._titles if t not in wanted]
            if not changed and not gone and self._arrays is not None:
                return False
            titles = {t: v for t, v in self._titles.items() if t in wanted}
            for tid in changed:
                titles[tid] = self._read_title(store, tid, wanted[tid])
            self._arrays = self._assemble(titles)
            self._titles = titles
            return True

    def _read_title(self, store: Store, tid: str, signature: tuple) -> _Title:
        shots = read_table(store.table_file("shots", tid), ["start_s", "end_s", "text"]).to_pydict()
        texts = [str(t or "") for t in shots["text"]]
        n = len(texts)
        tags: list[list[str]] = [[] for _ in range(n)]
        frames = None
        if signature[1] is not None:
            columns = store.feature_columns(tid)
            found = store.feature_tags(tid, columns)
            if found:
                tags = [sorted({t for shot_tags in found.values() for t in shot_tags[i]}) for i in range(n)]
            if self.frames and "video" in columns:
                frames = l2_normalize(store.features(tid, "video"))
        vectors = shot_text_vectors(store, tid, texts, self.encoder, persist=self.persist)
        return _Title(signature, texts, tags, np.asarray(shots["start_s"], np.float64),
                      np.asarray(shots["end_s"], np.float64), vectors, frames)

    def _tag_matrix(self, names: list[str]) -> np.ndarray:
        missing = [n for n in names if n not in self._tag_vectors]
        if missing:
            with self._encoding:
                encoded = l2_normalize(self.encoder.encode(missing))
            self._tag_vectors.update(zip(missing, encoded, strict=True))
        if not names:
            return np.zeros((0, 1), np.float32)
        return np.stack([self._tag_vectors[n] for n in names])

    def _assemble(self, titles: dict[str, _Title]) -> _Arrays:
        order = sorted(titles)
        parts = [titles[t] for t in order]
        dims = [p.vectors.shape[1] for p in parts if p.vectors.shape[1] > 1]
        dim = max(set(dims), key=dims.count) if dims else 1  # the encoder's size (zero-text titles have 1)
        n = sum(len(p.texts) for p in parts)
        text_vectors = np.zeros((n, dim), np.float32)
        has_text = np.zeros(n, bool)
        texts: list[str] = []
        tag_lists: list[list[str]] = []
        row = 0
        for p in parts:
            m = len(p.texts)
            if p.vectors.shape[1] == dim:
                text_vectors[row:row + m] = p.vectors
                has_text[row:row + m] = [bool(t.strip()) for t in p.texts]
            texts += p.texts
            tag_lists += p.tags
            row += m
        tag_names = sorted({t for ts in tag_lists for t in ts})
        tag_of = {name: i for i, name in enumerate(tag_names)}
        tag_ptr = np.zeros(n + 1, np.int64)
        tag_ptr[1:] = np.cumsum([len(ts) for ts in tag_lists])
        tag_ids = np.array([tag_of[t] for ts in tag_lists for t in ts], np.int64)
        postings: dict[str, list[int]] = {}
        for i, (text, ts) in enumerate(zip(texts, tag_lists, strict=True)):
            for w in words(text + " " + " ".join(ts)):
                postings.setdefault(w, []).append(i)
        frames = None
        if self.frames:
            fdims = {p.frames.shape[1] for p in parts if p.frames is not None}
            if len(fdims) == 1:
                fd = fdims.pop()
                frames = np.full((n, fd), np.nan, np.float32)  # NaN: no frame features for that shot
                row = 0
                for p in parts:
                    if p.frames is not None:
                        frames[row:row + len(p.texts)] = p.frames
                    row += len(p.texts)
        return _Arrays(
            title_ids=np.array([t for t, p in zip(order, parts, strict=True) for _ in p.texts], dtype=object),
            shot_index=np.concatenate([np.arange(len(p.texts)) for p in parts]) if parts else np.zeros(0, np.int64),
            starts=np.concatenate([p.starts for p in parts]) if parts else np.zeros(0),
            ends=np.concatenate([p.ends for p in parts]) if parts else np.zeros(0),
            texts=texts, text_vectors=text_vectors, has_text=has_text, tag_names=tag_names,
            tag_vectors=self._tag_matrix(tag_names), tag_ptr=tag_ptr, tag_ids=tag_ids,
            word_shots={w: np.array(ids, np.int64) for w, ids in postings.items()}, frames=frames)

    # ------------------------------------------------------------------ querying
    def query_vector(self, query: str) -> np.ndarray:
        with self._queries_lock:
            vec = self._queries.get(query)
            if vec is not None:
                self._queries.move_to_end(query)
                return vec
        with self._encoding:
            vec = l2_normalize(self.encoder.encode([query]))[0]
        with self._queries_lock:
            self._queries[query] = vec
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
        return vec

    def scores(self, query: str, frame_vector: np.ndarray | None = None, frame_scale: float = 2.5) -> np.ndarray:
        """Score of every shot [N] in index order; NaN where a shot has neither text nor tags."""
        a = self._arrays
        if a is None:
            raise RuntimeError("TextIndex.refresh(store) must run before queries")
        q = self.query_vector(query)
        n = len(a.texts)
        best = np.full(n, -np.inf, np.float32)
        if a.text_vectors.shape[1] == len(q):
            best = np.where(a.has_text, a.text_vectors @ q, best)
        if len(a.tag_ids) and a.tag_vectors.shape[1] == len(q):
            tag_scores = (a.tag_vectors @ q)[a.tag_ids]
            with_tags = np.diff(a.tag_ptr) > 0
            per_shot = np.maximum.reduceat(tag_scores, a.tag_ptr[:-1][with_tags])
            best[with_tags] = np.maximum(best[with_tags], per_shot)
        qwords = words(query)
        lexical = np.zeros(n, np.float32)
        for w in qwords:
            hit = a.word_shots.get(w)
            if hit is not None:
                lexical[hit] += 1.0
        if qwords:
            lexical /= len(qwords)
        scored = np.isfinite(best)
        s = np.where(scored, best + self.config.lexical_weight * lexical, np.nan).astype(np.float32)
        if frame_vector is not None and a.frames is not None:
            frame = a.frames @ l2_normalize(np.asarray(frame_vector, np.float32)[None])[0] * frame_scale
            s = np.where(np.isnan(s), frame, np.fmax(s, frame))  # NaN frame rows leave s as it is
        return s

    def search(self, query: str, k: int = 10, frame_vector: np.ndarray | None = None,
               frame_scale: float = 2.5) -> list[Hit]:
        """The k best shots at or above `config.min_score`, best first (ties: title, shot)."""
        s = self.scores(query, frame_vector, frame_scale)
        a = self._arrays
        ok = np.flatnonzero(~np.isnan(s) & (s >= self.config.min_score))
        if len(ok) > 4 * k:  # keep the k best and everything tied with the k-th
            kth = np.partition(s[ok], len(ok) - k)[len(ok) - k]
            ok = ok[s[ok] >= kth]
        order = sorted(ok.tolist(), key=lambda i: (-float(s[i]), a.title_ids[i], int(a.shot_index[i])))[:k]
        return [Hit(str(a.title_ids[i]), int(a.shot_index[i]), float(a.starts[i]), float(a.ends[i]),
                        float(s[i]), a.texts[i]) for i in order]

    def __len__(self) -> int:
        return 0 if self._arrays is None else len(self._arrays.texts)

