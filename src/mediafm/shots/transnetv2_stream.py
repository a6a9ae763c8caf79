"""Streaming TransNetV2 inference: every frame goes through every layer exactly once.

The reference `predict_frames` runs 100-frame windows every 50 frames, so each frame goes through
the network twice, and zero-pads each window's edges inside every temporal convolution. Here the
network runs as a stream instead: each temporal convolution keeps the last 16 frames of its input
(its largest dilation is 8) between chunks, each residual keeps the frames its branch has not yet
caught up with, and the frame-similarity head keeps +-50 frames of per-frame vectors. The result
is the network applied to the whole title as one window (zero padding only at the title's own
ends, after the reference's 25 copies of the first and last frames), in bounded memory, with no
frame computed twice.

Other savings, each measured in docs/shots.md: the 3x3 spatial convolutions run in int8 (the
input quantized once per layer and chunk, shared by the four branches); BatchNorm is folded into
the temporal convolutions and ReLU fused into them; activations stay channels-last (the
convolutions' native CPU layout) in bfloat16 with weights converted once, not per call as
autocast does. With `pipeline=True` the input (and so the caller's decoding) and the first stack
run in a second thread, the rest in the caller's.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from mediafm.prefetch import prefetch
from mediafm.shots.transnetv2_net import (DilatedDCNNV2, StackedDDCNNV2, TransNetV2Net, color_histograms,
                                          diagonal_band)

PAD = 25  # copies of the first and last frame around the title, as the reference does
HALO = 8  # largest temporal dilation: a layer's output lags its input by this many frames
BAND = 50  # the similarity heads compare each frame with its +-50 neighbours
LAG = 3 * 2 * HALO + BAND  # frames between a frame's arrival and its probability (3 stacks of 2 layers)
# The pipeline's first thread starts with the first PIPELINE_SPLIT of the 6 DDCNN layers (besides
# decoding), the calling thread the rest and the head; the split then follows measured costs.
PIPELINE_SPLIT = 2
PIPELINE_DEPTH = 2  # chunks the first thread may finish ahead of the second
PIPELINE_AHEAD = PIPELINE_DEPTH + 1  # chunks the first thread may be ahead, with the one it works on
_CL = torch.channels_last


def _empty(like: torch.Tensor, channels: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    shape = (0, channels or like.shape[1], *like.shape[2:])
    return torch.empty(shape, dtype=dtype or like.dtype).contiguous(memory_format=_CL)


class _DDCNNStream:
    """One DDCNN layer over a stream of frames [n, C, H, W] (channels-last), with its ReLU."""

    def __init__(self, layer: DilatedDCNNV2, dtype: torch.dtype, int8: bool = False):
        branches = layer.branches()
        bn = layer.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        # One 3x3 conv per branch, not one merged conv with 4x the channels: as fast (measured
        # within 4%), and each branch's output comes out dense, so joining it to the frames held
        # from the last chunk is a plain copy rather than a gather of interleaved channels.
        self.spatial = [b.layers[0].weight[:, :, 0].to(dtype).contiguous(memory_format=_CL) for b in branches]
        self.width = branches[0].layers[0].out_channels  # 2F channels per branch
        self.dilations = [b.layers[1].dilation[0] for b in branches]
        self.temporal = []  # per branch: BN-folded weight [F, 2F, 3, 1] and bias [F]
        out = branches[0].layers[1].out_channels
        for i, b in enumerate(branches):
            s = scale[i * out:(i + 1) * out]
            w = (b.layers[1].weight[:, :, :, 0] * s.view(-1, 1, 1, 1)).to(dtype)
            self.temporal.append((w.contiguous(memory_format=_CL), shift[i * out:(i + 1) * out].to(dtype)))
        self.out_channels = out * len(branches)
        self.qspatial = _Int8Convs.build([w.float() for w in self.spatial]) if int8 else None
        self.tails: list[torch.Tensor] | None = None  # per branch: spatial outputs, 8 frames of left context + pending

    def push(self, x: torch.Tensor, final: bool) -> torch.Tensor:
        dtype = self.spatial[0].dtype
        if not len(x):
            ss = [_empty(x, self.width, dtype)] * len(self.spatial)
        elif self.qspatial is not None:
            ss = self.qspatial(x)
        else:
            ss = [F.conv2d(x, w, padding=1) for w in self.spatial]
        h, w = ss[0].shape[2:]
        shape = (HALO, self.width, h, w)
        if self.tails is None:  # zero padding before the stream's first frame
            self.tails = [torch.zeros(shape, dtype=dtype).contiguous(memory_format=_CL)] * len(self.temporal)
        n = len(self.tails[0]) + len(ss[0]) + (HALO if final else 0) - 2 * HALO  # frames with complete +-8 context
        outs = []
        for i, (d, (wt, bt)) in enumerate(zip(self.dilations, self.temporal)):
            parts = [self.tails[i], ss[i]]
            if final:  # zero padding after the stream's last frame
                parts.append(torch.zeros(shape, dtype=dtype).contiguous(memory_format=_CL))
            z = torch.cat(parts)
            self.tails[i] = z[-2 * HALO:] if n > 0 else z
            if n > 0:
                # [L, C, H, W] channels-last is memory (L, H, W, C): as a [1, C, L, H*W] image the
                # temporal conv is a (3, 1) conv2d, and the frames it needs are a slice along L.
                zz = z.permute(1, 0, 2, 3).flatten(2).unsqueeze(0)[:, :, HALO - d:HALO + n + d]
                outs.append(_conv_relu(zz, wt, bt, d))
        if n <= 0:
            return _empty(ss[0], self.out_channels)
        y = torch.cat(outs, dim=1)  # [1, 4F, n, H*W]
        return y[0].permute(1, 0, 2).unflatten(2, (h, w))  # [n, 4F, H, W], channels-last


def _conv_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, dilation: int) -> torch.Tensor:
    """relu(conv2d(x, w, b, dilation=(dilation, 1))), the ReLU fused into oneDNN's kernel where
    this torch build has it (saves a pass over the output: ~10% of the temporal convs' time)."""
    if _FUSED_CONV is not None:
        return _FUSED_CONV(x, w, b, [0, 0], [1, 1], [dilation, 1], 1, "relu", [], "")
    return F.conv2d(x, w, b, dilation=(dilation, 1)).relu_()


_FUSED_CONV = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
_MAGIC = float(2 ** 23)  # float32 x + 2**23 keeps round(x) in its low mantissa bits, for 0 <= x < 2**22


def _quantize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """round(x / scale) as uint8, for 0 <= x <= 255 * scale.

    Measured 2x faster than `(x / scale).round_().to(torch.uint8)`: torch converts float to
    uint8 one element at a time, int32 to uint8 with vector instructions. Adding 2**23 rounds
    (to nearest even) and leaves the integer in the float's low bits, read through an int32 view.
    """
    y = x.float() if x.dtype != torch.float32 else x.clone()
    return y.mul_(1 / scale).add_(_MAGIC).view(torch.int32).to(torch.uint8)


class _Int8Convs:
    """3x3 convs (padding 1) of one input, with int8 weights (per output channel) on uint8 activations.

    The activations are non-negative (ReLU outputs, their sums and averages, or pixels), so they
    quantize to uint8 with zero point 0; the scale is taken from each chunk's maximum, so no
    calibration data is needed. The input is quantized once for all the convs; the outputs come
    back in bfloat16.
    """

    def __init__(self, weights: list[torch.Tensor]):
        self.convs = []  # (packed weight, weight scales, weight zero points)
        for w in weights:
            w_scale = (w.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12)
            qw = torch.round(w / w_scale.view(-1, 1, 1, 1)).clamp(-127, 127).to(torch.int8)
            packed = torch.ops.onednn.qconv_prepack(qw, w_scale, 1.0, 0, [1, 1], [1, 1], [1, 1], 1, None)
            self.convs.append((packed, w_scale, torch.zeros(len(w), dtype=torch.long)))

    @classmethod
    def build(cls, weights: list[torch.Tensor]) -> _Int8Convs | None:
        """The int8 convs, or None where this torch build lacks oneDNN's quantized ops (e.g. ARM)."""
        try:
            convs = cls(weights)
            convs(torch.ones(1, weights[0].shape[1], 3, 3).contiguous(memory_format=_CL))
            return convs
        except (AttributeError, RuntimeError, NotImplementedError):
            return None

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dtype == torch.uint8:  # pixels: exactly uint8 with scale 1/255
            q, scale = x, 1 / 255
        else:
            scale = float(x.amax()) / 255 or 1.0
            q = _quantize(x, scale)
        return [torch.ops.onednn.qconv_pointwise(q, scale, 0, packed, w_scale, w_zp, None, [1, 1], [1, 1], [1, 1],
                                                 1, 1.0, 0, torch.bfloat16, "none", [], "")
                for packed, w_scale, w_zp in self.convs]


class _StackStream:
    """Two DDCNN layers, the residual from the first, and 2x2 average pooling."""

    def __init__(self, stack: StackedDDCNNV2, dtype: torch.dtype, int8: bool = False):
        if len(stack.DDCNN) != 2:
            raise ValueError("streaming supports the released 2-layer stacks only")
        self.first, self.second = (_DDCNNStream(layer, dtype, int8) for layer in stack.DDCNN)
        self.shortcut: torch.Tensor | None = None  # first-layer outputs the second has not reached

    def layer1(self, x: torch.Tensor, final: bool) -> torch.Tensor:
        return self.first.push(x, final)

    def layer2(self, a: torch.Tensor, final: bool) -> torch.Tensor:
        """The second layer on the first's output `a`, plus the residual, pooled."""
        b = self.second.push(a, final)  # lags `a` by up to 8 frames: those wait in `shortcut`
        held = 0 if self.shortcut is None else len(self.shortcut)
        if held:
            b[:held] += self.shortcut[:len(b)]
        b[held:] += a[:max(0, len(b) - held)]
        if len(b) >= held:
            self.shortcut = a[len(b) - held:]
        else:
            self.shortcut = torch.cat([self.shortcut[len(b):], a])
        if not len(b):
            return _empty(b)[:, :, : b.shape[2] // 2, : b.shape[3] // 2]
        return F.avg_pool2d(b, 2)


class _Layer:
    """One streamed layer: takes chunks strictly in order, from whichever thread, and times itself.

    The pipeline may move a layer between its threads from one chunk to the next; a thread that
    gets to chunk `c` first waits until the layer has finished chunk `c - 1` (its stream state).
    """

    def __init__(self, fn: Callable[[torch.Tensor, bool], torch.Tensor], stack_output: bool):
        self.fn, self.stack_output = fn, stack_output  # stack_output: the head reads its per-frame means
        self.done = 0  # chunks finished
        self.cost = 0.0  # seconds per chunk, moving average (0: not measured yet)
        self._turn = threading.Condition()

    def __call__(self, c: int, x: torch.Tensor, final: bool) -> torch.Tensor:
        with self._turn:
            self._turn.wait_for(lambda: self.done == c)
        t = time.perf_counter()
        y = self.fn(x, final)
        self.cost = _average(self.cost, time.perf_counter() - t)
        with self._turn:
            self.done += 1
            self._turn.notify_all()
        return y


def _average(avg: float, x: float) -> float:
    return x if avg == 0.0 else 0.8 * avg + 0.2 * x


class StreamingTransNetV2:
    """Per-frame transition probabilities of a TransNetV2 network over a frame stream.

    One instance per title (it holds the stream's state). `chunk` frames go through the
    convolutions per call; memory is bounded by the chunk and the +-50-frame head window.

    With `pipeline=True` two threads work on consecutive chunks like an assembly line: a second
    thread pulls the input frames (so the caller's decoding runs there) and runs the first
    layers; the calling thread runs the other layers and the head. Each thread runs torch with
    `threads` intra-op threads. On 2 cores this keeps both busy, where one 2-thread torch call
    after each decoded chunk leaves a core idle whenever only one thread has work. Where to
    split follows the measured cost of pulling a chunk, of each layer and of the head, so the
    two threads stay balanced whether the frames come from a decoder or from memory (measured
    in docs/shots.md).
    """

    def __init__(self, net: TransNetV2Net, chunk: int = 64, dtype: torch.dtype = torch.bfloat16, int8: bool = False,
                 pipeline: bool = False, threads: int | None = None):
        self.net, self.chunk, self.dtype = net, chunk, dtype
        self.pipeline, self.threads = pipeline, threads
        self.stacks = [_StackStream(s, dtype, int8) for s in net.SDDCNN]
        self.layers = [_Layer(fn, out) for st in self.stacks for fn, out in ((st.layer1, False), (st.layer2, True))]
        self.input_cost = self.head_cost = 0.0  # seconds per chunk, moving averages
        self.splits: list[int] = []  # layers run in the first thread, per chunk (for tests and benchmarks)

    def probabilities(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            chunks = self._front(self._inputs(frames))
            if self.pipeline:
                chunks = prefetch(chunks, PIPELINE_DEPTH)
            with torch.inference_mode():
                head = _Head(self.net, self.dtype)
                for c, m, raw, means, x, final in chunks:
                    x, means = self._run(self.layers[m:], c, x, means, final)
                    t = time.perf_counter()
                    flat = x.permute(0, 2, 3, 1).flatten(1).float()  # (H, W, C) order, as trained
                    probs = list(head.ready(raw, means, flat, final=final))
                    self.head_cost = _average(self.head_cost, time.perf_counter() - t)
                    yield from probs
        finally:
            if self.threads:
                torch.set_num_threads(old)

    def _front(self, chunks: Iterator[tuple]) -> Iterator[tuple]:
        """Chunks through the first layers (all of them without the pipeline), in whichever
        thread runs this generator: (chunk index, layers run, raw frames, means, output, final)."""
        if self.threads:  # torch's thread settings are per thread
            torch.set_num_threads(self.threads)
        m = PIPELINE_SPLIT if self.pipeline else len(self.layers)
        with torch.inference_mode():
            for c in itertools.count():
                t = time.perf_counter()
                item = next(chunks, None)
                if item is None:
                    return
                self.input_cost = _average(self.input_cost, time.perf_counter() - t)
                raw, x, final = item
                if self.pipeline:
                    m = self._split(m)
                self.splits.append(m)
                x, means = self._run(self.layers[:m], c, x, [], final)
                yield c, m, raw, means, x, final

    def _split(self, m: int) -> int:
        """Layers for the first thread: the split with the smaller of the two threads' loads."""
        costs = [layer.cost for layer in self.layers]
        if not all(costs) or not self.head_cost:
            return m  # not all measured yet

        def load(k: int) -> float:
            return max(self.input_cost + sum(costs[:k]), sum(costs[k:]) + self.head_cost)

        best = min(range(1, len(costs)), key=load)
        return best if load(best) < 0.95 * load(m) else m  # 5% hysteresis: no flapping on noise

    @staticmethod
    def _run(layers: list[_Layer], c: int, x: torch.Tensor, means: list[torch.Tensor], final: bool):
        for layer in layers:
            x = layer(c, x, final)
            if layer.stack_output:
                means = [*means, x.float().mean(dim=(2, 3))]
        return x, means

    def _inputs(self, frames: Iterable[np.ndarray]) -> Iterator[tuple]:
        """Chunks of input frames, with the reference's padding at the title's ends."""
        it = iter(frames)
        first = next(it, None)
        if first is None:
            return
        buf = [first] * (PAD + 1)
        last = first
        for frame in it:
            buf.append(frame)
            last = frame
            if len(buf) >= self.chunk:
                yield self._input(buf, False)
                buf = []
        buf.extend([last] * PAD)
        yield self._input(buf, True)

    def _input(self, frames: list[np.ndarray], final: bool) -> tuple:
        raw = torch.from_numpy(np.stack(frames))  # [n, H, W, 3] uint8
        x = raw.permute(0, 3, 1, 2)  # a channels-last view of the frames
        if self.stacks[0].first.qspatial is None:
            x = x.to(self.dtype).div_(255)
        return raw, x, final


class _Head:
    """The two +-50-frame similarity heads and the classifier, as the stacks' outputs arrive.

    The stacks lag the input by 16, 32 and 48 frames; per-frame vectors wait here until every
    part of a frame and its +-50 neighbours are known. Frames outside the stream count as zero
    vectors, which gives zero similarity: the reference's padding.
    """

    def __init__(self, net: TransNetV2Net, dtype: torch.dtype):
        self.net = net
        # fc1 (4864 x 1024) is most of the head's arithmetic: in the stacks' precision.
        self.fc1 = (net.fc1.weight.to(dtype), net.fc1.bias.to(dtype))
        self.hist = torch.empty(0, 512)  # colour histograms of frames [base, ...)
        self.parts: list[torch.Tensor] = [torch.empty(0, 0)] * 3  # per stack: mean features
        self.flat = torch.empty(0, 0)  # last stack's flattened map, frames [done, ...)
        self.sim = torch.empty(0, 128)  # projected features, frames [base, ...)
        self.base = 0  # absolute index of hist[0] and sim[0]
        self.done = 0  # frames whose probability has been yielded (stream index)
        self.skip = PAD  # padded frames at the start whose probabilities are not returned

    def ready(self, raw: torch.Tensor, means: list[torch.Tensor], flat: torch.Tensor,
              final: bool = False) -> Iterator[np.ndarray]:
        net = self.net
        self.hist = torch.cat([self.hist, color_histograms(raw.unsqueeze(0))[0]])
        self.parts = [torch.cat([p, m]) if p.numel() else m for p, m in zip(self.parts, means)]
        self.flat = torch.cat([self.flat, flat]) if self.flat.numel() else flat
        n = min(len(p) for p in self.parts)  # frames with all three stacks' features
        if n:
            feats = torch.cat([p[:n] for p in self.parts], dim=1)
            self.parts = [p[n:] for p in self.parts]
            self.sim = torch.cat([self.sim, F.normalize(net.frame_sim_layer.projection(feats), p=2, dim=1)])
        known = self.base + len(self.sim)  # frames (absolute) with projected features
        limit = known if final else known - BAND
        if limit <= self.done:
            return
        rows = torch.arange(self.done, limit)
        x = torch.cat([
            F.relu(net.color_hist_layer.fc(self._band(self.hist, rows))),
            F.relu(net.frame_sim_layer.fc(self._band(self.sim, rows))),
            self.flat[:len(rows)],
        ], dim=1)
        self.flat = self.flat[len(rows):]
        hidden = F.relu(F.linear(x.to(self.fc1[0].dtype), *self.fc1)).float()
        probs = torch.sigmoid(net.cls_layer1(hidden)[:, 0]).numpy()
        self.done = limit
        keep = max(0, self.done - BAND - self.base)  # vectors no later frame will compare with
        self.hist, self.sim, self.base = self.hist[keep:], self.sim[keep:], self.base + keep
        out = probs[self.skip:]
        self.skip = max(0, self.skip - len(probs))
        if final:  # the trailing padded frames
            out = out[:len(out) - PAD] if len(out) >= PAD else out[:0]
        if len(out):
            yield out

    def _band(self, vecs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Similarities of frames `rows` with their +-50 neighbours: [len(rows), 101]."""
        lo, hi = int(rows[0]) - BAND, int(rows[-1]) + BAND + 1
        window = torch.zeros(hi - lo, vecs.shape[1])
        a, b = max(lo, self.base), min(hi, self.base + len(vecs))
        if b > a:
            window[a - lo:b - lo] = vecs[a - self.base:b - self.base]
        centre = window[BAND:BAND + len(rows)]
        return diagonal_band(centre @ window.T, 2 * BAND + 1)  # [k, k + 100] -> [k, 101]
