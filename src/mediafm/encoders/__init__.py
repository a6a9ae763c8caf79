"""Per-shot encoders (video, audio, text), fusion and the store pipeline.

Importing this package registers the built-in encoders. Each module imports its heavy runtime
(torch, onnxruntime, transformers...) only when an encoder is constructed, so listing encoders
stays cheap and a missing optional runtime only makes that encoder unavailable.
"""

from mediafm.encoders import (  # noqa: F401  (imported for their registrations)
    audio_aisfx,
    audio_whisper,
    audio_yamnet,
    clip,
    text_minilm,
    text_use,
    video_effnet,
    wav2vec2,
)
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
