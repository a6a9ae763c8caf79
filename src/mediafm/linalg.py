"""Vector helpers shared by fusion, search, training and the tests' synthetic stores."""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """float32 copy with the last axis scaled to unit length; all-zero rows (a shot without that
    modality) stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(np.where(norm > _EPS, x / np.maximum(norm, _EPS), 0.0), dtype=np.float32)
