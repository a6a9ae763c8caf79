"""What the explorer reads from the store, read once and kept in memory until the store changes.

No request scans the catalog or writes to the store: the titles table, per-title responses,
thumbnails, shot tables and vectors sit in bounded caches; the vector and text indexes are loaded
(or built in memory) once per change of the store. A change is noticed by the modification times
of the store's table folders (a commit renames files into them), checked at most every
`refresh_s` seconds, so a store being ingested into shows its new titles within that delay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mediafm.errors import StoreError
from mediafm.search.index import IndexConfig, ShotIndex, read_only_index, title_vectors
from mediafm.search.hit import Hit
from mediafm.search.query import ShotTable
from mediafm.search.text_match import TextEncoder, query_text_encoder
from mediafm.search.text_index import TextIndex
from mediafm.serve.cache import ByteLRU
from mediafm.serve.thumbs import encode_thumb
from mediafm.store.catalog import Store

log = logging.getLogger(__name__)

WARM_TITLES = 2000  # titles whose shot rows `warm` reads ahead (neighbour hits span the catalog)
MISSING = object()  # a cache miss (None is a valid cached answer: a title without frames)

# Folders whose contents define what the explorer shows (their mtimes change on every commit).
_WATCHED = ("titles", "shots", "features", "meta", "contextual")


class _CachedShotTable(ShotTable):
    """ShotTable whose shots tables and vectors outlive a request, within a byte budget."""

    def __init__(self, store: Store, budget: int, version: Callable[[], int]):
        super().__init__(store)
        # Keys carry the store version a value was read under (the catalog's, which moves on after
        # its caches are cleared): a read that began before a refresh can only add an entry no
        # later request asks for, never put an old table back under the current version.
        self.version = version
        self._tables: ByteLRU[pd.DataFrame] = ByteLRU(budget // 4, lambda df: int(df.memory_usage(deep=True).sum()))
        self._rows: ByteLRU[tuple] = ByteLRU(budget // 4)
        self._vectors: ByteLRU[np.ndarray] = ByteLRU(budget // 2)

    def get(self, title_id: str) -> pd.DataFrame:
        return self._tables.get_or_make((self.version(), title_id), lambda: self.store.shots(title_id))

    def hit(self, title_id: str, shot_index: int, score: float) -> Hit:
        # Plain arrays: a DataFrame row lookup costs more than the rest of a neighbour query.
        def make() -> tuple:
            df = self.get(title_id)
            return (df["start_s"].to_numpy(float), df["end_s"].to_numpy(float),
                    [str(t or "") for t in df["text"]])

        starts, ends, texts = self._rows.get_or_make((self.version(), title_id), make)
        return Hit(title_id, int(shot_index), float(starts[shot_index]), float(ends[shot_index]), float(score),
                   texts[shot_index])

    def vectors(self, title_id: str, embedding: str, model_id: str | None) -> np.ndarray:
        return self._vectors.get_or_make((self.version(), title_id, embedding, model_id),
                                         lambda: title_vectors(self.store, title_id, embedding, model_id))

    def clear(self) -> None:
        self._tables.clear()
        self._rows.clear()
        self._vectors.clear()


class Catalog:
    """The store as the explorer sees it (see the module docstring).

    Args:
        store: the store (only read).
        model_id: contextual model for the "contextual" embedding (None: the store's only one).
        refresh_s: how often to look for changes in the store.
        cache_mb: memory for cached responses, thumbnails, shot tables and vectors.
        text_encoder: for text search (default: the project's default text encoder on one thread,
            loaded on first use or by `warm`).
    """

    def __init__(self, store: Store, model_id: str | None = None, refresh_s: float = 1.0, cache_mb: int = 256,
                 text_encoder: TextEncoder | None = None):
        self.store = store
        self.model_id = model_id
        self.refresh_s = refresh_s
        budget = cache_mb << 20
        self._lock = threading.RLock()
        self._key: tuple | None = None
        self._checked = 0.0
        self.generation = 0
        self.titles: dict[str, dict] = {}  # title_id -> its titles row
        self._responses: ByteLRU[Any] = ByteLRU(budget // 4)
        self._thumbs: ByteLRU[bytes] = ByteLRU(budget // 4)
        self._frames: ByteLRU[np.ndarray | None] = ByteLRU(64, lambda _: 1)  # memory maps: bound the count
        self.shots = _CachedShotTable(store, budget // 2, lambda: self.generation)
        self._indexes: dict[str, ShotIndex] = {}
        self._index_locks = {e: threading.Lock() for e in ("fused", "contextual")}
        self._text_encoder = text_encoder
        self._text: TextIndex | None = None
        self._text_generation = -1
        self._text_lock = threading.Lock()
        # Per-title response makers (title_id, titles row, generation) that `warm` runs ahead of
        # requests; the app registers them. `ready` is set once `warm` has finished.
        self.warmers: list[Callable[[str, dict, int], Any]] = []
        self.ready = threading.Event()
        self.refresh(force=True)

    # ------------------------------------------------------------------ change detection
    def _store_key(self) -> tuple:
        root = self.store.root
        folders = [root / name for name in _WATCHED]
        folders += sorted((root / "contextual").glob("*/shots")) + sorted((root / "index").glob("*"))
        out = []
        for f in folders:
            try:
                out.append((f.name, f.stat().st_mtime_ns))
            except FileNotFoundError:
                out.append((f.name, None))
        return tuple(out)

    def refresh_due(self) -> bool:
        """True when `refresh` would look at the store (cheap to ask from the event loop)."""
        return time.monotonic() - self._checked >= self.refresh_s

    def refresh(self, force: bool = False) -> None:
        """Reload what changed in the store (at most every `refresh_s` seconds unless `force`)."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s:
            return
        with self._lock:
            if not force and now - self._checked < self.refresh_s:
                return
            self._checked = now
            key = self._store_key()
            if key == self._key:
                return
            titles = self.store.titles()
            self.titles = {r["title_id"]: r for r in titles.to_dict("records")}
            self._responses.clear()
            self._thumbs.clear()
            self._frames.clear()
            self.shots.clear()
            self._indexes = {}
            self._key = key
            self.generation += 1

    # ------------------------------------------------------------------ cached reads
    def memo(self, kind: str, key: Hashable, make: Callable[[], Any], generation: int | None = None) -> Any:
        """A response part computed once per store version (`kind` keeps endpoints apart).

        `generation`: the version `make`'s inputs were read under (from `snapshot`), when they were
        read before this call; by default the current one.
        """
        gen = self.generation if generation is None else generation
        return self._responses.get_or_make((gen, kind, key), make)

    def snapshot(self) -> tuple[int, dict[str, dict]]:
        """(generation, titles rows) of one store version. `refresh` replaces the rows before it
        moves the generation on, so reading the generation first never pairs old rows with a new
        generation (a response made from them could otherwise be cached as current)."""
        generation = self.generation
        return generation, self.titles

    def peek(self, kind: str, key: Hashable) -> Any:
        """What `memo` holds for (kind, key), or MISSING: answers without a thread."""
        return self._responses.peek((self.generation, kind, key), MISSING)

    def title(self, title_id: str) -> dict | None:
        self.refresh()
        return self.titles.get(title_id)

    def thumb(self, title_id: str, shot_index: int) -> bytes | None:
        """JPEG of a shot's middle sampled frame, made on first request; None without frames."""
        gen = self.generation

        def make() -> bytes | None:
            return _cut_thumb(self._frames.get_or_make((gen, title_id), lambda: self.store.frames(title_id)),
                              shot_index)

        return self._thumbs.get_or_make((gen, title_id, shot_index), make)

    def thumb_now(self, title_id: str, shot_index: int) -> bytes | None | object:
        """The thumbnail if no file has to be opened for it (cached, or cut from the title's frames
        mapped already), else MISSING: the caller then runs `thumb` in a thread.

        A JPEG of a mapped frame costs ~0.5 ms (the page is usually in memory): less than the
        hand-off to a worker thread, which under load waits behind neighbour queries
        (benchmarks/serve_load.py, first repeat: thumbnail p50 25 -> 16 ms, p99 83-146 -> 86-95 ms).
        """
        gen = self.generation
        data = self._thumbs.peek((gen, title_id, shot_index), MISSING)
        if data is MISSING:
            frames = self._frames.peek((gen, title_id), MISSING)
            if frames is not MISSING:  # the array itself, so an eviction meanwhile cannot force a read
                data = self._thumbs.get_or_make((gen, title_id, shot_index), lambda: _cut_thumb(frames, shot_index))
        return data

    def contextual_model(self) -> str | None:
        models = self.store.model_ids()
        return self.model_id or (models[0] if len(models) == 1 else None)

    def has_contextual(self, title_id: str) -> bool:
        model = self.contextual_model()
        return bool(model) and (self.store.contextual_dir(model) / "shots" / f"{title_id}.parquet").exists()

    # ------------------------------------------------------------------ indexes
    def index(self, embedding: str) -> ShotIndex:
        """The vector index for `embedding`, loaded (or built in memory) once per store version."""
        self.refresh()
        generation = self.generation
        cached = self._indexes.get(embedding)
        if cached is not None:
            return cached
        with self._index_locks[embedding]:
            cached = self._indexes.get(embedding)
            if cached is None:
                cached = read_only_index(self.store, IndexConfig(embedding=embedding, model_id=self.model_id))
                if generation == self.generation:
                    self._indexes[embedding] = cached
            return cached

    def text_index(self) -> TextIndex:
        """The text index, brought up to date with the store once per store version."""
        self.refresh()
        if self._text is not None and self._text_generation == self.generation:
            return self._text
        with self._text_lock:
            if self._text is None:
                self._text = TextIndex(self._text_encoder or query_text_encoder(), persist=False)
            generation = self.generation
            if self._text_generation != generation:
                self._text.refresh(self.store)
                self._text_generation = generation
            return self._text

    def warm(self) -> None:
        """Load the text encoder and indexes, the shot times and text that neighbour hits show and
        the per-title responses of `warmers`, ahead of the first requests; then set `ready`."""
        t0 = time.perf_counter()
        try:
            self._warm()
        finally:
            self.ready.set()  # whatever happened: requests are answered either way
        log.info("explorer: ready in %.1f s", time.perf_counter() - t0)

    def _warm(self) -> None:
        # Warming is an optimisation: whatever fails here (nothing encoded yet, a damaged file) is
        # what the request for it will report, so it is logged and the rest is warmed.
        for load in (self.text_index, lambda: self.index("fused")):
            _try(load, "explorer: start-up warming")
        gen, rows = self.snapshot()
        titles = [(tid, row) for tid, row in list(rows.items())[:WARM_TITLES] if int(row.get("n_shots") or 0)]
        for tid, _ in titles:
            if self.generation != gen:
                return  # the store moved on: what would be made now is for a version nobody asks
            _try(lambda: self.shots.hit(tid, 0, 0.0), f"explorer: warming {tid}")
        # A title's first detail and map requests read the store (a few ms each): under concurrent
        # load at start-up those reads queued every other request behind them (cold p99 0.3-0.6 s
        # against 25-65 ms warm). Made here while they fill at most half the response cache.
        for tid, row in titles:
            if self._responses.nbytes > self._responses.max_bytes // 2 or self.generation != gen:
                break
            for make in self.warmers:
                _try(lambda: make(tid, row, gen), f"explorer: warming {tid}")


def _try(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except StoreError as exc:  # e.g. no features yet: the request will say so
        log.info("%s: %s", what, exc.problem)
    except Exception as exc:
        log.warning("%s: %s: %s", what, type(exc).__name__, exc)


def _cut_thumb(frames: np.ndarray | None, shot_index: int) -> bytes | None:
    if frames is None or not 0 <= shot_index < len(frames):
        return None
    return encode_thumb(np.asarray(frames[shot_index, frames.shape[1] // 2]))


def source_name(row: dict) -> str:
    """The source file's name (never its path) for display."""
    return Path(str(row.get("path") or "")).name
