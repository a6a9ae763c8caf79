"""`EncodeConfig`: the one source of defaults for `encode_store` and `mediafm encode`."""

from __future__ import annotations

from dataclasses import dataclass

from mediafm.types import MODALITIES


@dataclass
class EncodeConfig:
    video: str | None = None  # video encoder name; None -> the registry default (`mediafm encoders`)
    audio: str | None = None  # audio encoder name; None -> the registry default
    text: str | None = None  # text encoder name; None -> the registry default
    video_weights: str | None = None  # local weights directory for loaders such as `clip`
    audio_weights: str | None = None  # local weights directory for loaders such as `wav2vec2`
    text_weights: str | None = None  # local weights directory (minilm-l6: a copy of the model's folder)
    batch_shots: int = 64  # shots per encoder call, gathered across titles (bounds memory)
    tags_k: int = 5  # top classifier tags kept per shot and modality
    normalize_modalities: bool = True  # L2-normalise each modality before concatenation (docs/encoders.md)
    # Append the film descriptors (loudness, light, colour, motion, shot length: encoders.descriptors)
    # to the fused vector as a fourth block.
    descriptors: bool = True
    asr: bool = False  # transcribe shots' audio (Whisper tiny.en) for titles without subtitles
    force: bool = False  # re-encode titles already encoded with the same encoder set
    # Where encoders with a GPU path run: auto | cpu | cuda | cuda:N (mediafm.devices); others run
    # where they always do.
    device: str = "auto"

    def names(self) -> dict[str, str]:
        """Encoder names with registry defaults filled in."""
        from mediafm.encoders.base import default_name

        return {m: getattr(self, m) or default_name(m) for m in MODALITIES}
