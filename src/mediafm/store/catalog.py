"""The catalog store layout and its reader/writer.

    STORE/
      store.json                     format marker and version
      titles/<title_id>.parquet      one row per title; published LAST, so its presence means "done"
      shots/<title_id>.parquet       one row per shot (see SHOT_COLUMNS)
      cues/<title_id>.parquet        the title's subtitle cues (CUE_COLUMNS; empty table: none found)
      failures/<key>.parquet         one row per failed source file (removed when it later succeeds)
      media/<title_id>/frames.npy    uint8 [n_shots, K, S, S, 3] sampled frames (RGB, centre-cropped)
      media/<title_id>/audio.npy     int16 [n_samples] mono at AUDIO_RATE (absent without audio)
      features/<title_id>.parquet    per-shot encoder outputs + fused vector (see encoders)
      meta/<title_id>.npy            float32 [D_text] embedding of the title metadata ([GLOBAL])
      contextual/<model_id>/...      per-shot contextual embeddings from a pretrained model

Every table is a folder of per-title Parquet files: pandas/pyarrow read the folder
(`pd.read_parquet("STORE/shots")`), DuckDB reads `STORE/shots/*.parquet`. Per-title files make
each write atomic and independent, so runs resume and Ray workers write shards side by side.
A title is staged in `STORE/.staging/` and published by renames (store/commit.py); one process at
a time writes a store (store/lock.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mediafm.errors import StoreError, failure_reason
from mediafm.store.arrays import from_fixed_list, load_npy, to_fixed_list
from mediafm.store.atomic import write_json_atomic, write_npy_atomic, write_parquet_atomic
from mediafm.store.commit import commit_title
from mediafm.types import Cue, TitleRecord

STORE_FORMAT = "mediafm-store"
STORE_VERSION = 1
AUDIO_RATE = 16_000

# The title table is TitleRecord's fields as columns, in the order they are declared.
_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "float | None": pa.float64(), "int": pa.int64(),
                "bool": pa.bool_()}
TITLE_SCHEMA = pa.schema([(f.name, _ARROW_TYPES[f.type]) for f in fields(TitleRecord)])
TITLE_COLUMNS = TITLE_SCHEMA.names
SHOT_COLUMNS = ["title_id", "shot_index", "start_frame", "end_frame", "start_s", "end_s", "text", "text_source"]
CUE_COLUMNS = ["title_id", "start_s", "end_s", "text", "source"]
TAG_COLUMNS = ("video_tags", "audio_tags")  # features columns of per-shot tag names (encoders that classify)
FAILURE_COLUMNS = ["source_key", "path", "stage", "error_type", "message", "failed_at"]


def read_table(f: Path, columns: list[str] | None = None) -> pa.Table:
    """A store table file; a damaged one is a StoreError naming it (not a pyarrow traceback)."""
    return _read(pq.read_table, f, columns=columns)


def read_schema(f: Path) -> pa.Schema:
    """A store table file's schema (StoreError naming the file when it is damaged)."""
    return _read(pq.read_schema, f)


def _read(read, f: Path, **kwargs):
    for attempt in (0, 1):
        try:
            return read(f, **kwargs)
        except FileNotFoundError:
            # A re-ingested title's row is removed, then its new one renamed in: read it again.
            if attempt or not Path(f).exists():
                raise StoreError(f, "missing: removed while it was being read; try again") from None
        except (pa.ArrowException, OSError) as exc:
            raise StoreError(f, f"cannot read this table ({type(exc).__name__}: {exc}); the command that "
                                "wrote it can write it again") from exc


def source_key(path: str | Path) -> str:
    """Identity of a source file for resume: absolute path + size + mtime (cheap, no hashing)."""
    # os.path.realpath raises OSError (ELOOP) on a link loop; Path.resolve raises RuntimeError.
    p = os.path.realpath(path, strict=True)
    st = os.stat(p)
    raw = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


class Store:
    """A catalog store folder. Cheap to construct; tables are read lazily."""

    def __init__(self, root: str | Path, create: bool = False):
        self.root = Path(root)
        marker = self.root / "store.json"
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            if not marker.exists():
                write_json_atomic({"format": STORE_FORMAT, "version": STORE_VERSION}, marker)
        elif not marker.exists():
            raise StoreError(self.root, "not a mediafm store (no store.json); run `mediafm ingest` first")
        else:
            info = json.loads(marker.read_text())
            if info.get("format") != STORE_FORMAT:
                raise StoreError(marker, "unknown store format")

    # ---------------------------------------------------------------- paths
    def _table_dir(self, table: str) -> Path:
        return self.root / table

    def table_file(self, table: str, title_id: str) -> Path:
        """A title's Parquet file in one of the per-title tables (titles, shots, cues, features)."""
        return self.root / table / f"{title_id}.parquet"

    def media_dir(self, title_id: str) -> Path:
        return self.root / "media" / title_id

    # ---------------------------------------------------------------- tables
    def _read_table(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        d = self._table_dir(table)
        files = sorted(f for f in d.glob("*.parquet")) if d.exists() else []
        # Rows written by older versions may lack newer columns (e.g. subtitle_encoding): null there.
        tables = []
        for f in files:
            try:
                tables.append(read_table(f, columns))
            except StoreError:
                if f.exists():
                    raise  # damaged; one removed since the listing (a cleared failure) is just gone
        if not tables:
            return pd.DataFrame(columns=columns or [])
        return pa.concat_tables(tables, promote_options="default").to_pandas()

    def titles(self) -> pd.DataFrame:
        df = self._read_table("titles")
        return df.sort_values("title_id").reset_index(drop=True) if len(df) else pd.DataFrame(columns=TITLE_COLUMNS)

    def title_ids(self) -> list[str]:
        d = self._table_dir("titles")
        return sorted(f.stem for f in d.glob("*.parquet")) if d.exists() else []

    def title(self, title_id: str) -> dict:
        """The title's row, column name -> value (`TitleRecord.from_row` makes it a record)."""
        f = self.table_file("titles", title_id)
        if not f.exists():
            raise StoreError(self.root, f"no title {title_id!r} in the store")
        return read_table(f).to_pylist()[0]

    def has_title(self, title_id: str) -> bool:
        return self.table_file("titles", title_id).exists()

    def done_keys(self) -> set[str]:
        df = self._read_table("titles", columns=["source_key"])
        return set(df["source_key"]) if len(df) else set()

    def shots(self, title_id: str | None = None) -> pd.DataFrame:
        if title_id is None:
            df = self._read_table("shots")
            if len(df):  # a commit in flight may show shots before their title row: not ours yet
                df = df[df["title_id"].isin(set(self.title_ids()))]
            return df.sort_values(["title_id", "shot_index"]).reset_index(drop=True) if len(df) else pd.DataFrame(columns=SHOT_COLUMNS)
        f = self.table_file("shots", title_id)
        if not f.exists():
            raise StoreError(self.root, f"no shots for title {title_id!r}")
        return read_table(f).to_pandas()

    def write_cues(self, title_id: str, cues: Iterable[Cue]) -> None:
        """The title's timed-text cues (an empty list records that it has none). Like every table,
        it carries the title id, so a reader of the whole folder knows whose cue each row is."""
        cues = list(cues)
        table = pa.table({"title_id": pa.array([title_id] * len(cues), pa.string()),
                          "start_s": pa.array([c.start_s for c in cues], pa.float64()),
                          "end_s": pa.array([c.end_s for c in cues], pa.float64()),
                          "text": pa.array([c.text for c in cues], pa.string()),
                          "source": pa.array([c.source for c in cues], pa.string())})
        write_parquet_atomic(table, self.table_file("cues", title_id))

    def cues(self, title_id: str) -> list[Cue] | None:
        """The title's cues sorted by start; None when the store has no cue table for it (a store
        ingested before cue tables existed, or ingested without subtitles)."""
        f = self.table_file("cues", title_id)
        if not f.exists():
            return None
        rows = read_table(f).to_pylist()
        return sorted((Cue(float(r["start_s"]), float(r["end_s"]), r["text"] or "", r["source"] or "subtitle")
                       for r in rows), key=lambda c: (c.start_s, c.end_s))

    def failures(self) -> pd.DataFrame:
        df = self._read_table("failures")
        return df if len(df) else pd.DataFrame(columns=FAILURE_COLUMNS)

    # ---------------------------------------------------------------- writes
    def write_title(self, record: TitleRecord, shots: pd.DataFrame, frames: np.ndarray | Path | None,
                    audio: np.ndarray | Path | None, drop_derived: bool = False) -> None:
        """Write one ingested title: media, shots, then the title row last (the commit point).

        `frames`/`audio` are arrays, or `.npy` files on the store's file system to move in. With
        `drop_derived`, what was derived from an earlier version of the title (features, meta and
        contextual embeddings) is removed too. Readers of the table folders see the old version
        or the new one (see `store/commit.py`).
        """
        tid = record.title_id
        missing = set(SHOT_COLUMNS) - set(shots.columns)
        if missing:
            raise StoreError(self.root, f"shots table for {tid} lacks columns {sorted(missing)}")
        if isinstance(audio, np.ndarray):
            audio = audio.astype(np.int16, copy=False)
        row = replace(record, ingested_at=record.ingested_at or time.time()).to_row()
        commit_title(self.root, tid, pa.Table.from_pylist([row], schema=TITLE_SCHEMA),
                     pa.Table.from_pandas(shots[SHOT_COLUMNS], preserve_index=False),
                     {"frames.npy": frames, "audio.npy": audio}, drop_derived)

    def write_shots(self, title_id: str, shots: pd.DataFrame) -> None:
        """Rewrite a title's shots table (e.g. to add ASR text); the row count must not change."""
        if len(shots) != len(self.shots(title_id)):
            raise StoreError(self.root, f"rewriting shots of {title_id} must keep the number of shots")
        write_parquet_atomic(pa.Table.from_pandas(shots[SHOT_COLUMNS], preserve_index=False),
                             self.table_file("shots", title_id))

    def record_failure(self, key: str, path: str | Path, stage: str, exc: BaseException) -> None:
        problem = failure_reason(exc)
        row = {"source_key": key, "path": str(path), "stage": stage, "error_type": type(exc).__name__,
               "message": problem, "failed_at": time.time()}
        write_parquet_atomic(pa.Table.from_pylist([row]), self.table_file("failures", key))

    def clear_failure(self, key: str) -> None:
        self.table_file("failures", key).unlink(missing_ok=True)

    # ---------------------------------------------------------------- media arrays
    def frames(self, title_id: str) -> np.ndarray | None:
        f = self.media_dir(title_id) / "frames.npy"
        return load_npy(f, mmap_mode="r") if f.exists() else None

    def audio(self, title_id: str) -> np.ndarray | None:
        """int16 mono samples at AUDIO_RATE, memory-mapped; None for titles without audio."""
        f = self.media_dir(title_id) / "audio.npy"
        return load_npy(f, mmap_mode="r") if f.exists() else None

    # ---------------------------------------------------------------- features
    def write_features(self, title_id: str, columns: dict[str, np.ndarray | list], encoders: dict) -> None:
        """Per-shot features. 2-D float arrays become fixed-size lists; `encoders` goes to metadata.

        `encoders` maps modality -> {"name":..., "version":..., "dim":...}; readers refuse to mix sets.
        """
        n = len(self.shots(title_id))
        arrays = {"title_id": pa.array([title_id] * n), "shot_index": pa.array(np.arange(n, dtype=np.int32))}
        for name, value in columns.items():
            if isinstance(value, np.ndarray) and value.ndim == 2:
                arrays[name] = to_fixed_list(value)
            else:
                arrays[name] = pa.array(value)
            if len(arrays[name]) != n:
                raise StoreError(self.root, f"feature {name!r} for {title_id} has {len(arrays[name])} rows, title has {n} shots")
        table = pa.table(arrays).replace_schema_metadata({"mediafm.encoders": json.dumps(encoders, sort_keys=True)})
        write_parquet_atomic(table, self.table_file("features", title_id))

    def has_features(self, title_id: str) -> bool:
        return self.table_file("features", title_id).exists()

    def feature_encoders(self, title_id: str) -> dict:
        meta = read_schema(self.table_file("features", title_id)).metadata or {}
        return json.loads(meta.get(b"mediafm.encoders", b"{}"))

    def feature_columns(self, title_id: str) -> list[str]:
        """The columns of a title's features table (encoder outputs, tags, fused); StoreError if unreadable."""
        return read_schema(self.table_file("features", title_id)).names

    def feature_tags(self, title_id: str, columns: Iterable[str] | None = None) -> dict[str, list[list[str]]]:
        """Per-shot tag lists of the encoders that tag (`TAG_COLUMNS`), for the ones the title has.

        `columns`: the title's `feature_columns`, when the caller has read them already."""
        names = list(columns) if columns is not None else self.feature_columns(title_id)
        cols = [c for c in TAG_COLUMNS if c in names]
        table = self.feature_table(title_id, cols).to_pydict() if cols else {}
        return {c: [list(v or []) for v in table[c]] for c in cols}

    def features(self, title_id: str, column: str = "fused") -> np.ndarray:
        f = self.table_file("features", title_id)
        if not f.exists():
            raise StoreError(self.root, f"no features for title {title_id!r}; run `mediafm encode`")
        try:
            col = read_table(f, [column]).column(column)
        except StoreError:
            # Only now read the schema (a hot path otherwise): say which column is missing.
            if column not in read_schema(f).names:
                raise StoreError(f, f"no {column!r} column (the title was encoded without it); "
                                    "run `mediafm encode`") from None
            raise
        if pa.types.is_fixed_size_list(col.type):
            return from_fixed_list(col)
        return col.to_numpy(zero_copy_only=False)

    def feature_table(self, title_id: str, columns: Iterable[str] | None = None) -> pa.Table:
        return read_table(self.table_file("features", title_id), list(columns) if columns else None)

    def check_encoders(self, title_ids: Iterable[str] | None = None) -> dict:
        """The one encoder set used across titles; StoreError if titles were encoded differently."""
        seen: dict[str, str] = {}
        first: dict | None = None
        for tid in title_ids if title_ids is not None else self.title_ids():
            if not self.has_features(tid):
                continue
            enc = self.feature_encoders(tid)
            if first is None:
                first, seen["first"] = enc, tid
            elif enc != first:
                raise StoreError(self.root, f"titles {seen['first']} and {tid} were encoded with different encoders "
                                 f"({first} vs {enc}); re-run `mediafm encode` to make them consistent")
        return first or {}

    def write_meta_embedding(self, title_id: str, vector: np.ndarray | None) -> None:
        f = self.root / "meta" / f"{title_id}.npy"
        if vector is None:
            f.unlink(missing_ok=True)
        else:
            write_npy_atomic(np.asarray(vector, dtype=np.float32), f)

    def meta_embedding(self, title_id: str) -> np.ndarray | None:
        f = self.root / "meta" / f"{title_id}.npy"
        return load_npy(f) if f.exists() else None

    # ---------------------------------------------------------------- contextual embeddings
    def contextual_dir(self, model_id: str) -> Path:
        return self.root / "contextual" / model_id

    def model_ids(self) -> list[str]:
        d = self.root / "contextual"
        return sorted(p.name for p in d.iterdir() if (p / "model.json").exists()) if d.exists() else []

    def write_contextual(self, model_id: str, title_id: str, shots: np.ndarray, cls: np.ndarray, model_info: dict) -> None:
        d = self.contextual_dir(model_id)
        if not (d / "model.json").exists():
            write_json_atomic(model_info, d / "model.json")
        write_npy_atomic(np.asarray(cls, dtype=np.float32), d / "cls" / f"{title_id}.npy")
        table = pa.table({"title_id": pa.array([title_id] * len(shots)),
                          "shot_index": pa.array(np.arange(len(shots), dtype=np.int32)),
                          "embedding": to_fixed_list(shots)})
        write_parquet_atomic(table, d / "shots" / f"{title_id}.parquet")

    def contextual(self, title_id: str, model_id: str | None = None) -> np.ndarray:
        model_id = model_id or self._only_model()
        f = self.contextual_dir(model_id) / "shots" / f"{title_id}.parquet"
        if not f.exists():
            raise StoreError(self.root, f"no contextual embeddings for {title_id!r} from model {model_id!r}; run `mediafm embed`")
        return from_fixed_list(read_table(f, ["embedding"]).column("embedding"))

    def cls_embedding(self, title_id: str, model_id: str | None = None) -> np.ndarray:
        model_id = model_id or self._only_model()
        return load_npy(self.contextual_dir(model_id) / "cls" / f"{title_id}.npy")

    def resolve_model(self, model_id: str | None = None) -> str:
        """`model_id` when the store holds its contextual embeddings, else the store's only model;
        StoreError naming the models it holds otherwise."""
        if model_id is None:
            return self._only_model()
        ids = self.model_ids()
        if model_id not in ids:
            raise StoreError(self.root, f"no contextual embeddings of model {model_id!r} in the store; it holds "
                                        f"{', '.join(ids) or 'none (run `mediafm embed`)'}")
        return model_id

    def _only_model(self) -> str:
        ids = self.model_ids()
        if len(ids) != 1:
            raise StoreError(self.root, f"store holds {len(ids)} models' embeddings {ids}; name one with --model")
        return ids[0]
