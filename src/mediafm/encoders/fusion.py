"""Fusion of per-modality shot vectors into the unit-norm `fused` vector (MediaFM's input).

Each modality is L2-normalised before concatenation by default: the encoders live on very
different scales, and on the montage raw concatenation gave video 87% of |fused|^2 and text 0%,
so audio and text barely counted (docs/encoders.md has the measurement: same-source retrieval
and speech detection from fused vectors). A missing modality stays a zero block, so its
absence carries no spurious direction (the presence flags are stored separately).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mediafm.linalg import l2_normalize
from mediafm.types import FUSED_BLOCKS


def fuse(parts: Sequence[np.ndarray], normalize_modalities: bool = True) -> np.ndarray:
    """Concatenate [N, D_m] blocks (optionally each unit-normalised) and unit-normalise the result.

    Returns float32 [N, sum(D_m)].
    """
    blocks = [l2_normalize(p) if normalize_modalities else np.asarray(p, np.float32) for p in parts]
    return l2_normalize(np.concatenate(blocks, axis=1))


def block_dims(encoders: dict) -> tuple[int, ...]:
    """The fused vector's block sizes, in order, from a store's encoder record (the modalities,
    then the film descriptors where the store has them); blocks the record lacks are left out."""
    return tuple(int(encoders[b]["dim"]) for b in FUSED_BLOCKS if isinstance(encoders.get(b), dict) and "dim" in encoders[b])
