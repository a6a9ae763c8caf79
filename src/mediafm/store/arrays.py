"""Numpy <-> Arrow fixed-size-list conversion for embedding columns (zero-copy where possible), and
thread-safe `.npy` loading."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa

# numpy parses .npy headers with ast.literal_eval, which CPython 3.11 cannot run in several threads
# at once ("SystemError: AST constructor recursion depth mismatch"): opening .npy files takes
# turns. Reading a memory-mapped array afterwards needs no lock.
_NPY_LOCK = threading.Lock()


def load_npy(path: str | Path, mmap_mode: str | None = None) -> np.ndarray:
    """`np.load` of a plain array, safe to call from several threads."""
    with _NPY_LOCK:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)


def to_fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """[N, D] float array -> Arrow fixed_size_list<float32>[D] of length N."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {matrix.shape}")
    flat = pa.array(matrix.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def from_fixed_list(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow fixed_size_list<float> column -> [N, D] float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, dim)
