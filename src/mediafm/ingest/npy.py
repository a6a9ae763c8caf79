"""Streamed `.npy` files: rows appended as they come, so a 3-hour film's frames cost disk, not RAM."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np


class NpyAppender:
    """Append rows to a `.npy` file without knowing the row count up front.

    A 128-byte header is reserved and filled on `close()`; numpy pads v1 headers to 64-byte
    multiples, and any realistic shape fits in 128 bytes (if not, the file is rewritten once).
    """

    HEADER = 128

    def __init__(self, path: Path, dtype: np.dtype | type, row_shape: tuple[int, ...] = ()):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self._fh.write(b"\0" * self.HEADER)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"row shape {rows.shape[1:]} != {self.row_shape}")
        self._fh.write(rows.tobytes())  # tobytes of a C-contiguous array is one memcpy
        self.rows += rows.shape[0]

    def close(self) -> Path:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.rows, *self.row_shape)})
        data = header.getvalue()
        if len(data) == self.HEADER:
            self._fh.seek(0)
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        else:  # exotic shape: rewrite with the right header (streamed copy)
            self._fh.close()
            tmp = self.path.with_name(self.path.name + ".re")
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(data)
                src.seek(self.HEADER)
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.path)
        return self.path

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)
