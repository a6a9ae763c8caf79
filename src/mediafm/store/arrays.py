"""Numpy <-> Arrow fixed-size-list conversion for embedding columns (zero-copy where possible)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


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
