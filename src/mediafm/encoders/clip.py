"""CLIP-style image/text encoder from user-supplied weights (transformers `CLIPModel`, local dir).

No CLIP weights install from the package registries, so this is a loader: point it at a folder
saved with `CLIPModel.save_pretrained` (+ its tokenizer and preprocessor config), e.g. a copy of
openai/clip-vit-base-patch32. Its text tower puts queries in the same space as the shots'
frames, which enables text-to-shot search (`encode_text`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mediafm.encoders.base import Encoder, Provenance, register_encoder, torch_device
from mediafm.errors import ModelUnavailableError

# OpenAI CLIP's normalisation, used when the folder has no preprocessor_config.json.
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)
_BATCH = 32


def _features(out):
    # transformers 5 returns a ModelOutput (pooler_output = projected embeddings); 4.x a tensor.
    return out if hasattr(out, "dim") else out.pooler_output


@register_encoder("video", "clip")
class CLIPEncoder(Encoder):
    requires = ("torch", "transformers")
    needs_weights_dir = True
    static_provenance = Provenance(package="", file="<weights_dir>", license="as the user's weights",
                                   source="user-supplied transformers CLIPModel directory")

    def __init__(self, weights_dir: str | Path | None = None) -> None:
        if weights_dir is None or not (Path(weights_dir) / "config.json").exists():
            raise ModelUnavailableError(weights_dir, "the clip encoder needs a local CLIPModel folder "
                                          "(config.json + weights); pass --video-weights DIR")
        import torch
        from transformers import AutoTokenizer, CLIPModel

        d = Path(weights_dir)
        self.device = torch_device()
        self.model = CLIPModel.from_pretrained(d, local_files_only=True).eval().to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(d, local_files_only=True) if (
            (d / "tokenizer_config.json").exists() or (d / "tokenizer.json").exists()) else None
        pre = json.loads((d / "preprocessor_config.json").read_text()) if (d / "preprocessor_config.json").exists() else {}
        self.mean = torch.tensor(pre.get("image_mean", _MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.get("image_std", _STD)).view(1, 3, 1, 1)
        self.size = int(self.model.config.vision_config.image_size)
        self.dim = int(self.model.config.projection_dim)
        self.version = self.model.config.model_type + "-" + d.name
        self.provenance = Provenance(package="", file=str(d), license="as the user's weights",
                                     source=str(getattr(self.model.config, "_name_or_path", d)))

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        out = []
        with torch.inference_mode():
            for i in range(0, len(batch), _BATCH):
                x = torch.from_numpy(np.ascontiguousarray(batch[i:i + _BATCH])).permute(0, 3, 1, 2).float() / 255.0
                if x.shape[-1] != self.size:  # frames are stored square; CLIP wants its own size
                    x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False).clamp(0, 1)
                x = ((x - self.mean) / self.std).to(self.device)
                out.append(_features(self.model.get_image_features(pixel_values=x)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Text queries in the image embedding space: float32 [N, dim]."""
        import torch

        if self.tokenizer is None:
            raise ModelUnavailableError(None, "this CLIP folder has no tokenizer; text search needs one")
        tok = self.tokenizer(list(texts), padding=True, truncation=True,
                             max_length=self.model.config.text_config.max_position_embeddings, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tok.items()})
        return _features(out).float().cpu().numpy()
