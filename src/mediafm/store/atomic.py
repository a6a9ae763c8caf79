"""Atomic writes: write to a temp file in the same folder, fsync, then os.replace.

A reader (or a resumed run) sees either the old file or the whole new one, never a torn write.
Files get the permissions the user's umask allows (like any file the user creates), so a store or
model on a shared machine is as readable as the user intends.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to `path`; on success move it into place, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = create_temp(path.parent, f".{path.name}.", ".tmp")
    mode = tmp_path.stat().st_mode & 0o777  # 0666 less the umask, as the kernel applied it
    try:
        yield tmp_path
        if tmp_path.stat().st_mode & 0o777 != mode:
            os.chmod(tmp_path, mode)  # the writer replaced the file with its own (safetensors writes 0600)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def create_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty, uniquely named file in `folder` with mode 0666 minus the umask.

    tempfile.mkstemp would create it 0600 whatever the umask, and the final os.replace keeps that
    mode: others could never read the store.
    """
    for _ in range(100):
        tmp = Path(folder) / f"{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{folder}: no free temporary file name for {prefix}*{suffix}")


def write_parquet_atomic(table: pa.Table, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_npy_atomic(array: np.ndarray, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def write_json_atomic(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
