"""Shot thumbnails: JPEGs cut from frames.npy on first request and cached under STORE/thumbs/."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mediafm.store.atomic import atomic_path
from mediafm.store.catalog import Store

THUMB_WIDTH = 160  # px; the timeline shows ~8 per row
JPEG_QUALITY = 80


def thumb_path(store: Store, title_id: str, shot_index: int) -> Path:
    # title_id and shot_index are validated by the caller against the store (ids, never paths).
    return store.root / "thumbs" / title_id / f"{shot_index}.jpg"


def encode_thumb(frame: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """RGB uint8 [H, W, 3] -> JPEG bytes `width` wide. Pure."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame))
    img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def get_thumb(store: Store, title_id: str, shot_index: int) -> Path | None:
    """The cached thumbnail of one shot (its middle sampled frame), made on first use; None when the
    title has no frames (audio-only) or no such shot."""
    path = thumb_path(store, title_id, shot_index)
    if path.exists():
        return path
    frames = store.frames(title_id)
    if frames is None or not 0 <= shot_index < len(frames):
        return None
    frame = frames[shot_index, frames.shape[1] // 2]
    data = encode_thumb(np.asarray(frame))
    with atomic_path(path) as tmp:  # concurrent requests for one thumb: the last rename wins, both whole
        tmp.write_bytes(data)
    return path
