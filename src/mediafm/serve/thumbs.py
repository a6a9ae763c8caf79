"""Shot thumbnails: JPEGs cut from a title's sampled frames (frames.npy) on first request.

They are kept in the explorer's memory (serve/store_view.py), never written to the store, so the
explorer works on a read-only store and leaves it as it found it.
"""

from __future__ import annotations

import io

import numpy as np

THUMB_WIDTH = 160  # px; the timeline shows ~8 per row
JPEG_QUALITY = 80


def encode_thumb(frame: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """RGB uint8 [H, W, 3] -> JPEG bytes `width` wide. Pure."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame))
    img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
