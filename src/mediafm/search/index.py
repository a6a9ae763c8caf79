"""A FAISS index over the catalog's shot embeddings, stored under STORE/index/<name>/.

    STORE/index/<name>/                  name = "fused" or "contextual-<model_id>"
      manifest.json                      what is indexed (titles and their file signatures), the
                                         index kind and its measured recall; written LAST
      faiss-<generation>.index           the FAISS index (vectors are unit-norm: inner product = cosine)
      rows-<generation>.parquet          faiss id -> (title_id, shot_index)

Why FAISS and not LanceDB: FAISS is already a dependency, runs in-process with no server or
storage engine, and on 2 cores it answers a 1M x 384 query in ~1 ms (IVF) with recall@10 >= 0.95
(see docs/search.md and benchmarks/search.py). LanceDB would add a dependency for the same
IVF-style index and is not installed here.

Exact search (IndexFlatIP) is used up to `exact_max` vectors: its cost is linear (about 7 ms of CPU
per query at 100k x 384, 90 ms at 1M); above that, an IVF index with `nprobe` tuned at build time
until the sampled recall@10 against exact search reaches `target_recall`. IVF was chosen over HNSW
by measurement (benchmarks/search.py): on well-separated clusters HNSW (M=32, efConstruction=40)
reached only 0.78-0.85 recall@10 at efSearch 64-128 where IVF reached 1.0 at nprobe 8, on noise
0.13-0.38 against IVF's 0.71; HNSW builds slower, and IVF supports `remove_ids` (re-encoded or
removed titles are dropped without a rebuild).

Updates are incremental: titles whose embedding file is new are added, removed or re-encoded titles
(file signature changed) are removed and re-added. The manifest is the commit point: index and rows
files carry a generation id, so a crash leaves the previous generation intact.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from mediafm.errors import ConfigError, StoreError, StoreLockedError
from mediafm.linalg import l2_normalize
from mediafm.store.atomic import atomic_path, write_json_atomic, write_parquet_atomic
from mediafm.store.catalog import Store
from mediafm.store.lock import store_lock

log = logging.getLogger(__name__)

EMBEDDINGS = ("fused", "contextual")
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class IndexConfig:
    """How the index is built. CLI flags take their defaults from here."""

    embedding: str = "fused"  # "fused" (per-shot encoder concat) or "contextual" (model output)
    model_id: str | None = None  # contextual model; None: the store's only model
    exact_max: int = 50_000  # up to this many vectors: exact IndexFlatIP (<= ~7 ms/query); above: IVF
    nlist_per_sqrt: float = 4.0  # IVF lists = this * sqrt(n) (FAISS guideline: 4-16 sqrt(n))
    train_per_list: int = 40  # training vectors per IVF list (k-means needs >= ~39)
    target_recall: float = 0.97  # nprobe is doubled until sampled recall@10 reaches this
    max_nprobe: int = 512
    tune_queries: int = 200  # sampled stored vectors used to measure recall at build time
    retrain_growth: float = 4.0  # retrain IVF centroids once the index grew this much since training
    threads: int = 2  # FAISS OpenMP threads for building (k-means, adding)
    # Threads for one interactive query: on a busy 2-core machine OpenMP's spin-waiting made a
    # single flat query at 100k 10x slower with 2 threads than with 1 (145 vs 14 ms p50).
    query_threads: int = 1

    def __post_init__(self) -> None:
        if self.embedding not in EMBEDDINGS:
            raise ConfigError(None, f"unknown embedding {self.embedding!r}; expected one of {EMBEDDINGS}")


@dataclass
class IndexInfo:
    """The manifest of a built index."""

    name: str
    embedding: str
    model_id: str | None
    dim: int
    kind: str  # "flat" (exact) or "ivf"
    n_vectors: int
    nlist: int = 0
    nprobe: int = 0
    recall_at_10: float = 1.0  # measured against exact search on sampled stored vectors
    n_trained: int = 0  # vectors present when the IVF centroids were trained
    next_id: int = 0
    generation: str = ""
    built_at: float = 0.0
    titles: dict[str, str] = field(default_factory=dict)  # title_id -> embedding file signature
    version: int = MANIFEST_VERSION


# ----------------------------------------------------------------------------- embeddings in the store
def _resolve_model(store: Store, config: IndexConfig) -> str | None:
    if config.embedding == "fused":
        return None
    return store.resolve_model(config.model_id or None)


def index_name(embedding: str, model_id: str | None) -> str:
    return "fused" if embedding == "fused" else f"contextual-{model_id}"


def embedding_file(store: Store, title_id: str, embedding: str, model_id: str | None) -> Path:
    if embedding == "fused":
        return store.table_file("features", title_id)
    return store.contextual_dir(model_id) / "shots" / f"{title_id}.parquet"


def _signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def title_vectors(store: Store, title_id: str, embedding: str = "fused", model_id: str | None = None) -> np.ndarray:
    """Unit-norm float32 [n_shots, D] embeddings of one title."""
    if embedding == "fused":
        return l2_normalize(store.features(title_id, "fused"))
    return l2_normalize(store.contextual(title_id, model_id))


def _wanted_titles(store: Store, embedding: str, model_id: str | None) -> dict[str, str]:
    out = {}
    for tid in store.title_ids():
        f = embedding_file(store, tid, embedding, model_id)
        if f.exists():
            out[tid] = _signature(f)
    return out


# ----------------------------------------------------------------------------- FAISS building blocks
def _faiss():
    # faiss logs each failed SIMD variant at INFO while it picks one: noise for users.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss  # imported lazily: `mediafm --help` must not pay for it

    return faiss


def build_flat(dim: int):
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build_ivf(vectors: np.ndarray, config: IndexConfig, seed: int = 0):
    """An untrained-then-trained IVF-Flat (inner product) index; vectors are not added."""
    faiss = _faiss()
    n, dim = vectors.shape
    nlist = max(1, min(int(config.nlist_per_sqrt * math.sqrt(n)), n // config.train_per_list))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    n_train = min(n, nlist * config.train_per_list)
    sample = vectors[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else vectors
    index.train(sample)
    return index


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k ids found in the approximate top-k (ids -1 never match)."""
    k = exact.shape[1]
    hits = [len(set(a[a >= 0].tolist()) & set(e.tolist())) for a, e in zip(approx, exact)]
    return float(np.sum(hits) / (len(exact) * k))


def tune_nprobe(index, vectors: np.ndarray, config: IndexConfig, seed: int = 0) -> tuple[int, float]:
    """Double nprobe from 8 until recall@10 of sampled stored vectors reaches the target.

    Returns (nprobe, measured recall@10). Ground truth is exact search over the same vectors.
    """
    faiss = _faiss()
    rng = np.random.default_rng(seed)
    q = vectors[rng.choice(len(vectors), min(config.tune_queries, len(vectors)), replace=False)]
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    k = min(10, len(vectors))
    _, exact = flat.search(q, k)
    nprobe, recall = min(8, index.nlist), 0.0
    while True:
        index.nprobe = nprobe
        _, approx = index.search(q, k)
        recall = recall_at_k(approx, exact)
        if recall >= config.target_recall or nprobe >= min(index.nlist, config.max_nprobe):
            return nprobe, recall
        nprobe = min(nprobe * 2, index.nlist, config.max_nprobe)


# ----------------------------------------------------------------------------- the loaded index
class ShotIndex:
    """A loaded index: FAISS ids map to (title_id, shot_index)."""

    def __init__(self, info: IndexInfo, index, rows: pd.DataFrame, query_threads: int = IndexConfig.query_threads):
        self.info = info
        self.query_threads = query_threads
        self.index = index
        ids = rows["id"].to_numpy(np.int64)
        # FAISS id -> row, by binary search over the sorted ids (a pandas lookup costs ~0.2 ms/query).
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]
        self._ids = ids
        self._titles = rows["title_id"].to_numpy(object)
        self._shots = rows["shot_index"].to_numpy(np.int64)
        self.title_ids = sorted(info.titles)
        # Each title's rows are one block in shot order (titles are added and removed whole).
        starts = np.flatnonzero(np.r_[True, self._titles[1:] != self._titles[:-1]]) if len(ids) else []
        self._first_row = {str(self._titles[p]): int(p) for p in starts}

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return self.info.dim

    def stored_vector(self, title_id: str, shot_index: int) -> np.ndarray | None:
        """A shot's unit vector as the exact index holds it (no file read); None when the index
        cannot give it back (IVF) or does not hold that shot."""
        p = self._first_row.get(title_id)
        if p is None or self.info.kind != "flat":
            return None
        p += shot_index
        if not (0 <= shot_index and p < len(self._ids) and self._titles[p] == title_id and self._shots[p] == shot_index):
            return None
        return self.index.reconstruct(int(self._ids[p]))

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, int, float]]]:
        """Top-k (title_id, shot_index, cosine) per query row; queries are normalised here."""
        q = l2_normalize(np.atleast_2d(queries))
        if q.shape[1] != self.dim:
            raise ConfigError(None, f"query has dim {q.shape[1]}, index {self.info.name!r} has dim {self.dim}")
        k = max(1, min(k, len(self)))
        _faiss().omp_set_num_threads(self.query_threads)
        if self.info.kind == "ivf":
            self.index.nprobe = self.info.nprobe
        scores, ids = self.index.search(q, k)
        out = []
        for srow, irow in zip(scores, ids):
            keep = irow >= 0
            pos = self._order[np.searchsorted(self._sorted_ids, irow[keep])]
            out.append([(str(self._titles[p]), int(self._shots[p]), float(s))
                        for p, s in zip(pos, srow[keep])])
        return out


# ----------------------------------------------------------------------------- persistence
def read_info(directory: Path) -> IndexInfo | None:
    f = directory / "manifest.json"
    if not f.exists():
        return None
    try:
        raw = json.loads(f.read_text())
        info = IndexInfo(**raw)
    except (ValueError, TypeError) as exc:
        raise StoreError(f, f"unreadable index manifest ({exc}); delete the folder and run `mediafm index`") from exc
    return info if info.version == MANIFEST_VERSION else None


def _load(directory: Path, info: IndexInfo) -> ShotIndex:
    faiss = _faiss()
    index_file = directory / f"faiss-{info.generation}.index"
    rows_file = directory / f"rows-{info.generation}.parquet"
    if not index_file.exists() or not rows_file.exists():
        raise StoreError(directory, "index files named by manifest.json are missing; run `mediafm index`")
    return ShotIndex(info, faiss.read_index(str(index_file)), pq.read_table(rows_file).to_pandas())


def _save(directory: Path, info: IndexInfo, index, rows: pd.DataFrame) -> None:
    faiss = _faiss()
    old = read_info(directory)
    info.generation = uuid.uuid4().hex[:12]
    info.built_at = time.time()
    with atomic_path(directory / f"faiss-{info.generation}.index") as tmp:
        faiss.write_index(index, str(tmp))
    write_parquet_atomic(pa.Table.from_pandas(rows[["id", "title_id", "shot_index"]], preserve_index=False),
                         directory / f"rows-{info.generation}.parquet")
    write_json_atomic(asdict(info), directory / "manifest.json")  # the commit point
    if old and old.generation:
        for stale in (f"faiss-{old.generation}.index", f"rows-{old.generation}.parquet"):
            (directory / stale).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- build / update
def _read_all(store: Store, titles: list[str], embedding: str, model_id: str | None,
              progress: bool) -> tuple[np.ndarray, pd.DataFrame]:
    mats, tids, shots = [], [], []
    for tid in tqdm(titles, desc="index: reading embeddings", unit="title", disable=not progress):
        v = title_vectors(store, tid, embedding, model_id)
        mats.append(v)
        tids.extend([tid] * len(v))
        shots.append(np.arange(len(v), dtype=np.int32))
    if not mats:
        return np.zeros((0, 0), np.float32), pd.DataFrame({"id": [], "title_id": [], "shot_index": []})
    dims = {m.shape[1] for m in mats}
    if len(dims) != 1:
        raise StoreError(store.root, f"titles have embeddings of different sizes {sorted(dims)}; re-run `mediafm encode`")
    vectors = np.concatenate(mats)
    rows = pd.DataFrame({"id": np.arange(len(vectors), dtype=np.int64), "title_id": tids,
                         "shot_index": np.concatenate(shots)})
    return vectors, rows


def _full_build(store: Store, config: IndexConfig, name: str, model_id: str | None,
                wanted: dict[str, str], progress: bool) -> tuple[IndexInfo, object, pd.DataFrame]:
    vectors, rows = _read_all(store, sorted(wanted), config.embedding, model_id, progress)
    n = len(vectors)
    dim = vectors.shape[1] if n else 0
    info = IndexInfo(name=name, embedding=config.embedding, model_id=model_id, dim=dim, kind="flat",
                     n_vectors=n, next_id=n, titles=dict(wanted))
    if n > config.exact_max:
        log.info("index %s: training IVF on %d vectors", name, n)
        index = build_ivf(vectors, config)
        index.add_with_ids(vectors, rows["id"].to_numpy(np.int64))
        info.kind, info.nlist, info.n_trained = "ivf", int(index.nlist), n
        info.nprobe, info.recall_at_10 = tune_nprobe(index, vectors, config)
    else:
        index = build_flat(max(dim, 1))
        if n:
            index.add_with_ids(vectors, rows["id"].to_numpy(np.int64))
    return info, index, rows


def update_index(store: Store, config: IndexConfig | None = None, progress: bool = True,
                 rebuild: bool = False) -> IndexInfo:
    """Bring STORE/index/<name>/ up to date with the store: add new titles, drop removed or
    re-encoded ones; rebuild from scratch when the index kind must change. Returns the manifest."""
    config = config if config is not None else IndexConfig()
    with store_lock(store.root, "mediafm index"):
        return _update_index(store, config, progress, rebuild)


def _update_index(store: Store, config: IndexConfig, progress: bool, rebuild: bool) -> IndexInfo:
    _faiss().omp_set_num_threads(config.threads)
    model_id = _resolve_model(store, config)
    name = index_name(config.embedding, model_id)
    directory = store.root / "index" / name
    wanted = _wanted_titles(store, config.embedding, model_id)
    info = None if rebuild else read_info(directory)
    if info is None or not info.generation:
        info, index, rows = _full_build(store, config, name, model_id, wanted, progress)
        _save(directory, info, index, rows)
        return info

    stale = sorted(t for t, sig in info.titles.items() if wanted.get(t) != sig)
    new = sorted(t for t, sig in wanted.items() if info.titles.get(t) != sig)
    if not stale and not new:
        return info
    loaded = _load(directory, info)
    index, rows = loaded.index, pq.read_table(directory / f"rows-{info.generation}.parquet").to_pandas()
    if stale:
        drop = rows["title_id"].isin(stale).to_numpy()
        index.remove_ids(rows.loc[drop, "id"].to_numpy(np.int64))
        rows = rows.loc[~drop].reset_index(drop=True)
        for t in stale:
            info.titles.pop(t, None)
    parts = [rows]
    for tid in tqdm(new, desc=f"index {name}: adding titles", unit="title", disable=not progress):
        v = title_vectors(store, tid, config.embedding, model_id)
        if info.n_vectors == 0 and len(rows) == 0 and info.dim != v.shape[1]:
            index, info.dim = build_flat(v.shape[1]), v.shape[1]  # an empty index takes any dim
        if v.shape[1] != info.dim:
            log.info("index %s: %s has dim %d, index has %d; rebuilding", name, tid, v.shape[1], info.dim)
            return _update_index(store, config, progress, rebuild=True)
        ids = np.arange(info.next_id, info.next_id + len(v), dtype=np.int64)
        index.add_with_ids(v, ids)
        info.next_id += len(v)
        info.titles[tid] = wanted[tid]
        parts.append(pd.DataFrame({"id": ids, "title_id": tid, "shot_index": np.arange(len(v), dtype=np.int32)}))
    rows = pd.concat(parts, ignore_index=True)
    info.n_vectors = int(index.ntotal)
    must_rebuild = (
        (info.kind == "flat" and info.n_vectors > config.exact_max)
        or (info.kind == "ivf" and info.n_vectors <= config.exact_max // 2)
        or (info.kind == "ivf" and info.n_vectors > config.retrain_growth * max(info.n_trained, 1))
    )
    if must_rebuild:
        return _update_index(store, config, progress, rebuild=True)
    _save(directory, info, index, rows)
    return info


def open_index(store: Store, config: IndexConfig | None = None, update: bool = True,
               progress: bool = False) -> ShotIndex:
    """Load the index for `config`, first bringing it up to date (cheap when nothing changed).

    While another process writes the store, the index is not updated on disk: an up-to-date one is
    loaded, or one is built in memory for this process (`read_only_index`).
    """
    config = config if config is not None else IndexConfig()
    model_id = _resolve_model(store, config)
    directory = store.root / "index" / index_name(config.embedding, model_id)
    if update:
        try:
            info = update_index(store, config, progress=progress)
        except StoreLockedError:
            return read_only_index(store, config)
    else:
        info = read_info(directory)
    if info is None:
        raise StoreError(directory, "no index; run `mediafm index`")
    if info.n_vectors == 0:
        raise StoreError(store.root, f"no {config.embedding} embeddings in the store; run `mediafm encode`"
                         + (" and `mediafm embed`" if config.embedding == "contextual" else ""))
    return _load(directory, info)


def read_only_index(store: Store, config: IndexConfig | None = None) -> ShotIndex:
    """The index for `config` without writing anything to the store: the stored one when it covers
    exactly the store's current embeddings, else one built in memory (exact search up to
    `exact_max` vectors, IVF above; run `mediafm index` to keep it on disk)."""
    config = config if config is not None else IndexConfig()
    _faiss().omp_set_num_threads(config.threads)
    model_id = _resolve_model(store, config)
    name = index_name(config.embedding, model_id)
    directory = store.root / "index" / name
    wanted = _wanted_titles(store, config.embedding, model_id)
    info = read_info(directory)
    if info is not None and info.generation and info.titles == wanted and info.n_vectors:
        try:
            return _load(directory, info)
        except StoreError:
            pass  # files of that generation gone (a writer replaced it meanwhile): build below
    info, index, rows = _full_build(store, config, name, model_id, wanted, progress=False)
    if info.n_vectors == 0:
        raise StoreError(store.root, f"no {config.embedding} embeddings in the store; run `mediafm encode`"
                         + (" and `mediafm embed`" if config.embedding == "contextual" else ""))
    log.info("index %s: stored index missing or out of date; built in memory (%d vectors)", name, info.n_vectors)
    return ShotIndex(info, index, rows, query_threads=config.query_threads)
