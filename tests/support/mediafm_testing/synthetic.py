"""Synthetic stores of fused shot vectors (no media) for tests, the learning test and scale runs.

`structured_store` writes titles whose shots follow a scene structure that only context can
resolve: each scene has a location prototype and two characters from the title's cast shown in
alternation (shot / reverse shot, A B A B ...). A masked shot is best predicted from the shots two
steps away (same character, same location), not from its direct neighbours (the other character)
nor from the title mean (all scenes mixed), so a model that beats those baselines uses context.

`vector_store` writes many titles of random vectors fast, for data-loader/embedding scale runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mediafm.linalg import l2_normalize
from mediafm.store.atomic import write_parquet_atomic
from mediafm.store.catalog import SHOT_COLUMNS, Store
from mediafm.types import TitleRecord

SYNTH_ENCODERS = {"fused": {"name": "synthetic", "version": "1", "dim": 0}}


@dataclass
class SyntheticConfig:
    n_titles: int = 40  # titles written
    dim: int = 32  # fused vector size
    meta_dim: int = 16  # metadata embedding size; 0 = no meta/ files
    shots_per_title: tuple[int, int] = (40, 120)  # inclusive range of shots per title
    scene_len: tuple[int, int] = (6, 14)  # inclusive range of shots per scene
    cast_size: int = 12  # characters per title
    location_weight: float = 1.0  # share of the scene location in a shot vector
    character_weight: float = 1.0  # share of the character
    noise: float = 0.15  # isotropic noise per shot
    meta_fraction: float = 0.5  # share of titles with a metadata embedding
    seed: int = 0


def structured_title(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """[N, D] unit-norm fused vectors of one title with scene / alternating-character structure."""
    n = int(rng.integers(cfg.shots_per_title[0], cfg.shots_per_title[1] + 1))
    cast = l2_normalize(rng.standard_normal((cfg.cast_size, cfg.dim)))
    rows = []
    while len(rows) < n:
        loc = l2_normalize(rng.standard_normal(cfg.dim))
        a, b = rng.choice(cfg.cast_size, size=2, replace=False)
        for k in range(int(rng.integers(cfg.scene_len[0], cfg.scene_len[1] + 1))):
            who = cast[a if k % 2 == 0 else b]
            rows.append(cfg.location_weight * loc + cfg.character_weight * who
                        + cfg.noise * rng.standard_normal(cfg.dim) / np.sqrt(cfg.dim) * 3)
    return l2_normalize(np.asarray(rows[:n]))


def _write(store: Store, tid: str, fused: np.ndarray, meta: np.ndarray | None, durations: np.ndarray) -> None:
    n = len(fused)
    ends = np.cumsum(durations)
    shots = pd.DataFrame({"title_id": tid, "shot_index": np.arange(n), "start_frame": -1, "end_frame": -1,
                          "start_s": ends - durations, "end_s": ends, "text": "", "text_source": ""})[SHOT_COLUMNS]
    record = TitleRecord(title_id=tid, path=f"synthetic://{tid}", source_key=f"synthetic-{tid}",
                         duration_s=float(ends[-1]), n_shots=n, detector="synthetic", meta_json="{}")
    # Store.write_features counts rows in the shots table, and the title row (written by
    # write_title) is the commit point, so the shots table goes first, then features, then the title.
    write_parquet_atomic(pa.Table.from_pandas(shots, preserve_index=False), store.table_file("shots", tid))
    enc = {"fused": {**SYNTH_ENCODERS["fused"], "dim": int(fused.shape[1])}}
    store.write_features(tid, {"fused": fused}, enc)
    store.write_meta_embedding(tid, meta)
    store.write_title(record, shots, None, None)


def structured_store(root, cfg: SyntheticConfig | None = None) -> Store:
    """Write `cfg.n_titles` structured titles into a new store at `root`."""
    cfg = cfg if cfg is not None else SyntheticConfig()
    store = Store(root, create=True)
    rng = np.random.default_rng(cfg.seed)
    for i in range(cfg.n_titles):
        fused = structured_title(rng, cfg)
        meta = None
        if cfg.meta_dim and rng.random() < cfg.meta_fraction:
            meta = l2_normalize(rng.standard_normal(cfg.meta_dim))
        _write(store, f"synth{i:05d}", fused, meta, rng.uniform(0.5, 8.0, len(fused)))
    return store


def vector_store(root, n_shots: int, dim: int = 128, shots_per_title: int = 1000, seed: int = 0,
                 progress: bool = False) -> Store:
    """A store of ~n_shots random unit vectors in titles of `shots_per_title` (vectors only, fast)."""
    store = Store(root, create=True)
    rng = np.random.default_rng(seed)
    n_titles = max(1, -(-n_shots // shots_per_title))
    it = range(n_titles)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="synthetic titles", unit="title")
    for i in it:
        n = min(shots_per_title, n_shots - i * shots_per_title)
        fused = l2_normalize(rng.standard_normal((n, dim), dtype=np.float32))
        _write(store, f"vec{i:07d}", fused, None, np.full(n, 4.0))
    return store
