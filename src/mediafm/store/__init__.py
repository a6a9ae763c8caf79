"""The catalog store: a folder of Parquet tables and memory-mapped arrays (see docs/store.md)."""

from mediafm.store.atomic import atomic_path, write_json_atomic, write_npy_atomic, write_parquet_atomic
from mediafm.store.catalog import Store

__all__ = ["Store", "atomic_path", "write_json_atomic", "write_npy_atomic", "write_parquet_atomic"]
