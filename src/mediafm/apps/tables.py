"""Writing result tables: .csv, .parquet or .json (a list of records), chosen by the file name.

The format is checked before any work is done (`check_output`), and the file is written
atomically, so a failed run leaves no file and a reader never sees half of one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.errors import ConfigError
from mediafm.store.atomic import atomic_path

FORMATS = (".csv", ".parquet", ".json")


def check_output(path: str | Path) -> Path:
    """The output path, if its suffix names a format and its folder can hold it."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise ConfigError(p, f"output must end in {', '.join(FORMATS)}")
    if p.exists() and p.is_dir():
        raise ConfigError(p, "output is a folder; give a file name")
    return p


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    p = check_output(path)
    suffix = p.suffix.lower()
    with atomic_path(p) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            records = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
            tmp.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return p


def _plain(v):
    """numpy scalars -> Python; NaN/inf -> None (JSON has no such numbers)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def preview(df: pd.DataFrame, rows: int = 12) -> str:
    """A short fixed-width table for the terminal (floats to 3 decimals)."""
    if df.empty:
        return "(no rows)"
    shown = df.head(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}")
    more = len(df) - rows
    return shown + (f"\n... {more} more rows" if more > 0 else "")
