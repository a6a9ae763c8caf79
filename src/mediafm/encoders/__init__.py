"""Per-shot encoders (video, audio, text), fusion and the store pipeline.

The first lookup (`get_encoder`, `available_encoders`...) imports every module of this package,
which registers the built-in encoders (mediafm.registry.import_modules). Each module imports its
heavy runtime (torch, onnxruntime, transformers...) only when an encoder is constructed, so listing
encoders stays cheap and a missing optional runtime only makes that encoder unavailable.
"""

from mediafm.encoders.base import (
    Encoder,
    EncoderInfo,
    Provenance,
    available_encoders,
    default_name,
    get_encoder,
    register_encoder,
)
from mediafm.encoders.config import EncodeConfig

__all__ = ["Encoder", "EncoderInfo", "Provenance", "EncodeConfig", "available_encoders", "default_name",
           "get_encoder", "register_encoder"]
