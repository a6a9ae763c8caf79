"""wav2vec2 audio encoder from user-supplied weights (transformers `Wav2Vec2Model`, local dir).

The encoder Netflix used for MediaFM's audio. Its weights do not install from the registries,
so this loads a folder saved with `save_pretrained` (e.g. a copy of facebook/wav2vec2-base).
Shot audio is cut into windows (short shots padded, centred), and the last hidden states are
mean-pooled over time and windows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mediafm.encoders.base import Provenance, WindowedAudioEncoder, register_encoder, torch_device
from mediafm.errors import ModelUnavailableError


@register_encoder("audio", "wav2vec2")
class Wav2Vec2Encoder(WindowedAudioEncoder):
    requires = ("torch", "transformers")
    needs_weights_dir = True
    static_provenance = Provenance(package="", file="<weights_dir>", license="as the user's weights",
                                   source="user-supplied transformers Wav2Vec2Model directory")
    window_s = 4.0  # long enough for context, short enough to batch on a laptop
    hop_s = 4.0

    def __init__(self, weights_dir: str | Path | None = None) -> None:
        if weights_dir is None or not (Path(weights_dir) / "config.json").exists():
            raise ModelUnavailableError(weights_dir, "the wav2vec2 encoder needs a local Wav2Vec2Model folder "
                                          "(config.json + weights); pass --audio-weights DIR")
        from transformers import Wav2Vec2Model

        d = Path(weights_dir)
        self.device = torch_device()
        self.model = Wav2Vec2Model.from_pretrained(d, local_files_only=True).eval().to(self.device)
        fe = d / "preprocessor_config.json"
        # Base models expect zero-mean unit-variance input (feature extractor's do_normalize).
        self.normalize = json.loads(fe.read_text()).get("do_normalize", True) if fe.exists() else True
        self.dim = int(self.model.config.hidden_size)
        self.version = self.model.config.model_type + "-" + d.name
        self.provenance = Provenance(package="", file=str(d), license="as the user's weights",
                                     source=str(getattr(self.model.config, "_name_or_path", d)))

    def _embed_windows(self, windows: np.ndarray) -> tuple[np.ndarray, None]:
        import torch

        x = windows.astype(np.float32)
        if self.normalize:
            x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-7)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), 8):
                h = self.model(torch.from_numpy(x[i:i + 8]).to(self.device)).last_hidden_state
                out.append(h.mean(1).float().cpu().numpy())
        return np.concatenate(out), None
