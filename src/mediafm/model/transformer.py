"""MediaFM: a BERT-style Transformer over a title's sequence of fused shot vectors.

The whole model lives in this one file (nanoGPT style). Input per title:

    [CLS] [GLOBAL] shot_0 shot_1 ... shot_{N-1}

- shots: the unit-norm fused vector of each shot, projected D -> h, plus a learned position
  embedding (and optionally start-time/duration features);
- [GLOBAL]: the text encoder's embedding of the title metadata, projected D_text -> h, or a learned
  "no metadata" vector when the title has none;
- [CLS]: a learned vector whose output summarises the title.

Pretraining is masked shot modeling: 20% of the real shots are replaced by a learned [MASK]
vector and the model predicts their fused vectors, scored on masked positions only by the cosine
distance (`cosine`), by InfoNCE (`contrastive`: the prediction must pick its true shot among every
other real shot of the batch, its own title's included), or by both (OBJECTIVES). The read-out
(`readout`, READOUTS) says which vector `embed_title` returns per shot: the last hidden state, the
output projection in fused space, the mean of the layers or all of them side by side, `masked` (the
prediction for the shot from its context alone, with the shot itself masked: exactly what
pretraining trains), each optionally joined with the shot's own input. Attention is
`F.scaled_dot_product_attention`, so GPUs get fused kernels (flash attention without a mask;
memory-efficient attention with the padding mask or the distance bias, `distance_bias`: an
ALiBi-style prior towards nearby shots). Sizes come from the presets (PRESETS: `tiny`, `small`,
`medium`, `base`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mediafm.errors import ConfigError
from mediafm.registry import lookup, registrar

N_SPECIAL = 2  # [CLS] and [GLOBAL] precede the shots
MASKED_PASSES = 5  # "masked" read-out: passes per window, each masking every 5th shot (20%, as in training)

# name -> builder(input_dim, meta_dim=0, **choices) -> ModelConfig: the sizes of each preset
PRESETS: dict[str, Callable[..., ModelConfig]] = {}
register_preset = registrar(PRESETS)
# name -> loss(pred, target, masked, real, temperature) on the masked real shots
OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {}
register_objective = registrar(OBJECTIVES)
# name -> Readout; every read-out X is also registered as "X+input": X joined with the shot's own
# fused input, each part unit-norm, so a consumer gets the shot's own detail and its context side by side
READOUTS: dict[str, Readout] = {}
_register_readout = registrar(READOUTS)

# Fields a preset sets (the model's size) or the store's vectors set (input sizes); the other fields
# are the choices a training config makes (`TrainConfig.model`), passed to the preset by name.
SIZE_FIELDS = ("input_dim", "meta_dim", "hidden", "n_layers", "n_heads", "mlp_ratio", "modality_dims", "name")
# What a saved config without one of these fields meant: the value from before the field existed or
# before the lever table (docs/narrative-benchmark.md) changed its default, so older model folders
# load as the model they were trained as.
ABSENT_FIELDS = {"objective": "cosine", "neighbor_weight": 0.0, "readout": "hidden", "distance_bias": False}


@dataclass
class ModelConfig:
    input_dim: int = 64  # D: size of the fused shot vector read from the store
    meta_dim: int = 0  # D_text: size of the metadata embedding; 0 = model has no metadata input
    hidden: int = 128  # h: Transformer width, also the size of the contextual embeddings
    n_layers: int = 2  # encoder blocks
    n_heads: int = 4  # attention heads; hidden must divide by it
    mlp_ratio: int = 4  # MLP hidden size = mlp_ratio * hidden
    max_shots: int = 512  # longest shot sequence per window (learned positions); longer titles use windows
    dropout: float = 0.0  # dropout on attention output and MLP; 0 adds no randomness of its own
    time_features: bool = False  # add projected (log start time, log duration) of each shot
    # Defaults below: the ones the lever table (docs/narrative-benchmark.md) chose for the product.
    objective: str = "both"  # masked-shot loss: a name in OBJECTIVES
    temperature: float = 0.1  # InfoNCE softmax temperature (contrastive objectives)
    # Weight of the neighbour loss (0 = off): each shot's output names the shots before and after it
    neighbor_weight: float = 0.5
    readout: str = "stack+title+input"  # what embed_title (and so `mediafm embed`) returns per shot: a name in READOUTS
    # Attention scores between shots lowered by slope_h * distance in shots, one slope per head
    # from 1/4 to 1/4**n_heads (ALiBi, Press et al. 2022): a prior that shots near each other
    # belong together (scenes), which learned positions must otherwise learn from the data. On
    # long titles (150-600 shots) it took tone, ad relevancy and popularity from fused's level to above it.
    distance_bias: bool = True
    # Training only: each shot's input loses each modality's block with this probability (its
    # target stays whole), so the model learns to recover a modality from the others and from the
    # neighbouring shots instead of leaning on the largest block. Needs `modality_dims`.
    modality_dropout: float = 0.0
    modality_dims: tuple[int, ...] = ()  # sizes of the fused vector's modality blocks, in order (from the store)
    # Weight of the boundary loss (0 = off): from its final state, each shot predicts how much the
    # title changes at the cut after it (`boundary_change`: the shots just before against just after)
    boundary_weight: float = 0.0
    name: str = "mediafm"  # recorded in model cards and contextual model ids

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ConfigError (a ValueError) for settings no model can be built with."""
        if self.hidden % self.n_heads:
            raise ConfigError(None, f"hidden={self.hidden} is not divisible by n_heads={self.n_heads}")
        if self.max_shots < 2:
            raise ConfigError(None, f"max_shots must be >= 2, got {self.max_shots}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ConfigError(None, f"modality_dropout must be in [0, 1), got {self.modality_dropout}")
        self.modality_dims = tuple(int(d) for d in self.modality_dims)
        lookup(OBJECTIVES, self.objective, "objective")
        lookup(READOUTS, self.readout, "readout")

    @property
    def embed_dim(self) -> int:
        """Size of the per-shot vectors `embed_title` returns (depends on the read-out)."""
        return READOUTS[self.readout].size(self)

    def choices(self) -> dict:
        """The fields that are not sizes (SIZE_FIELDS): what a preset builder takes as keywords."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SIZE_FIELDS}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{**ABSENT_FIELDS, **{k: v for k, v in d.items() if k in known}})


# ---------------------------------------------------------------- presets (torchtune-style builders)
@register_preset("tiny")
def tiny(input_dim: int, meta_dim: int = 0, **kw) -> ModelConfig:
    """Tests: trains in seconds on one CPU core."""
    return ModelConfig(input_dim=input_dim, meta_dim=meta_dim, hidden=64, n_layers=2, n_heads=4,
                       name="mediafm-tiny", **kw)


@register_preset("small")
def small(input_dim: int, meta_dim: int = 0, **kw) -> ModelConfig:
    """CPU laptops: ~3M parameters."""
    return ModelConfig(input_dim=input_dim, meta_dim=meta_dim, hidden=256, n_layers=4, n_heads=4,
                       name="mediafm-small", **kw)


@register_preset("medium")
def medium(input_dim: int, meta_dim: int = 0, **kw) -> ModelConfig:
    """Wider CPU model: ~16M parameters, twice the width of `small`."""
    return ModelConfig(input_dim=input_dim, meta_dim=meta_dim, hidden=512, n_layers=4, n_heads=8,
                       name="mediafm-medium", **kw)


@register_preset("base")
def base(input_dim: int, meta_dim: int = 0, **kw) -> ModelConfig:
    """GPUs: BERT-base sized (12 layers, 768 wide, 12 heads, ~85M encoder parameters)."""
    return ModelConfig(input_dim=input_dim, meta_dim=meta_dim, hidden=768, n_layers=12, n_heads=12,
                       name="mediafm-base", **kw)


def drop_modalities(fused: torch.Tensor, dims: tuple[int, ...], p: float) -> torch.Tensor:
    """`fused` [B, N, D] with each shot's modality blocks (sizes `dims`) zeroed independently with
    probability p (torch's generator, like dropout)."""
    keep = (torch.rand(*fused.shape[:-1], len(dims), device=fused.device) >= p).to(fused.dtype)
    sizes = torch.as_tensor(dims, device=fused.device)
    return fused * keep.repeat_interleave(sizes, dim=-1, output_size=fused.shape[-1])


# ---------------------------------------------------------------- modules
PACK_ON_CPU = True  # run the blocks' per-token products on the real tokens only (see Packed)
ATTEND_BY_WINDOW = True  # with PACK_ON_CPU, attention too runs on each window's real tokens (see Packed)
WRITTEN_OUT_BF16_ATTENTION = True  # CPU windows in bf16: products and softmax, not the fused kernel (window_attention)
# Under CPU bf16 autocast, the products whose sizes follow the batch (packed token rows, the input
# projection's shot rows, the heads' rows, each window's attention) run at sizes rounded up to a few
# buckets. torch's CPU bf16 products are oneDNN's, which compiles kernels for every new shape and
# keeps the last 1,024 primitives: with each batch's own sizes a long-form step compiled about 400
# kernels (a new token count every step; ~500 window lengths), with buckets they are compiled once.
SHAPE_BUCKETS = True
ROW_BUCKET = 128  # packed token rows and the input projection's rows: a multiple of this
HEAD_ROW_BUCKET = 64  # rows through an output head
WINDOW_BUCKET = 16  # a window's attention: its tokens padded to a multiple of this (keys masked)


def cpu_bf16_buckets(device: torch.device) -> bool:
    """True where `SHAPE_BUCKETS` applies: CPU bf16 autocast (oneDNN's products)."""
    return (SHAPE_BUCKETS and device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def rows_at_bucketed_size(fn: Callable[[torch.Tensor], torch.Tensor], idx: torch.Tensor,
                          multiple: int) -> torch.Tensor:
    """`fn(idx)` for a row-wise `fn`; under `cpu_bf16_buckets`, computed on `idx` followed by copies
    of its first entry up to a multiple of `multiple` rows, whose outputs are dropped (never read,
    so their gradients are zero)."""
    extra = round_up(len(idx), multiple) - len(idx)
    if not (extra and len(idx) and cpu_bf16_buckets(idx.device)):
        return fn(idx)
    return fn(torch.cat([idx, idx[:1].expand(extra)]))[:len(idx)]


class Packed(NamedTuple):
    """Where the real tokens of a padded [B, L] batch sit in its flattened rows. On a CPU the
    blocks' per-token products (qkv, proj, MLP: most of a step) run on the real rows only, which
    skipped ~23% of them on long-form batches. When every window's real tokens are a prefix of
    its row (as batches from the store always are), attention runs window by window on those
    tokens too (`spans`); otherwise it unpacks to [B, L] around its kernel."""

    index: torch.Tensor  # [T] flat row of each real token
    B: int
    L: int
    spans: tuple[int, ...] | None = None  # real tokens of each window, when each is a prefix of its row
    # with `spans`: zero rows after the T real ones (SHAPE_BUCKETS), carried through the per-token
    # products and left out of attention
    tail: int = 0
    # with `spans`: each window's tokens padded to this many in attention (SHAPE_BUCKETS), else None
    attend: tuple[int, ...] | None = None

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """[T (+ tail), C] -> [B, L, C], padding rows zero."""
        x = x[:len(self.index)]
        return x.new_zeros(self.B * self.L, x.shape[-1]).index_copy(0, self.index, x).view(self.B, self.L, -1)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v for one window ([1, heads, n, d] each; bias [1, heads, n, n]).

    On a CPU in bfloat16, written out as two products and a softmax, all in bfloat16: the first
    product adds the bias and the scale as it writes the scores (`baddbmm`), and torch's bf16
    softmax and its backward accumulate in float32 row by row. The forward and backward of a
    long-form batch's windows (4 layers) took 392 ms in torch's fused CPU kernel, 255 ms in the
    written-out form with float32 scores and softmax (a cast, a scaling and an add around them)
    and 198 ms in this one (`python benchmarks/pretrain.py --parts`, 2 cores): every pass over the
    [heads, n, n] scores moves half the bytes, and three passes are gone. Against float64,
    this form's outputs and gradients are closer than the float32-softmax form's (bfloat16
    rounding of the outputs dominates both). In float32 the written-out form was no faster, so
    float32 and GPUs keep the fused kernel.
    """
    if WRITTEN_OUT_BF16_ATTENTION and q.device.type == "cpu" and q.dtype == torch.bfloat16 and not dropout_p:
        B, h, n, d = q.shape
        q, k, v = q.reshape(B * h, n, d), k.reshape(B * h, n, d).transpose(-1, -2), v.reshape(B * h, n, d)
        if bias is None:
            scores = torch.bmm(q * d ** -0.5, k)
        else:
            bias = bias.to(q.dtype).expand(B, h, n, n).reshape(B * h, n, n)
            scores = torch.baddbmm(bias, q, k, alpha=d ** -0.5)
        return torch.bmm(torch.softmax(scores, -1), v).view(B, h, n, d)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | tuple[torch.Tensor, ...] | None,
                packed: Packed | None = None) -> torch.Tensor:
        """attn_mask: for the padded layout, as `encode` builds it; with `packed.spans`, one bias per
        window or None."""
        qkv = self.qkv(x)
        if packed is not None and packed.spans is not None:
            return self.proj(self._by_window(qkv, attn_mask, packed.spans, packed.attend, packed.tail))
        if packed is not None:  # x: [T, H] real tokens only
            qkv = packed.unpack(qkv)
        B, L, H = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(B, L, 3, self.n_heads, H // self.n_heads).permute(2, 0, 3, 1, 4)
        # attn_mask: bool [B, 1, 1, L], True = attend (padding keys are never attended to), or
        # float [B, heads, L, L] added to the scores (distance bias, padding at -inf)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, L, H)
        return self.proj(y if packed is None else y.reshape(B * L, H)[packed.index])

    def _by_window(self, qkv: torch.Tensor, biases: tuple[torch.Tensor, ...] | None, spans: tuple[int, ...],
                   attend: tuple[int, ...] | None = None, tail: int = 0) -> torch.Tensor:
        """Attention over packed rows [sum(spans) + tail, 3H], one window's tokens at a time: no
        padded query or key of the batch is scored (docs/model.md measures what that saves).
        `biases`: each window's [1, heads, n, n] distance bias, or None; with `attend` (Packed's),
        each window's tokens are padded to that many and its bias masks the padded keys; the
        `tail` rows after the windows get zeros."""
        H = qkv.shape[-1] // 3
        attend = attend or spans
        out = []
        # One split, not a slice per window: a slice's backward writes its gradient into a zeroed
        # copy of all T rows, once per window and layer (~60 ms a long-form step); split's is one cat.
        pieces = qkv.split(spans + ((tail,) if tail else ()))
        for j, (n, m, rows) in enumerate(zip(spans, attend, pieces)):
            if m > n:
                rows = F.pad(rows, (0, 0, 0, m - n))
            q, k, v = rows.view(1, m, 3, self.n_heads, H // self.n_heads).permute(2, 0, 3, 1, 4)
            y = window_attention(q, k, v, None if biases is None else biases[j],
                                 self.dropout if self.training else 0.0)
            out.append(y[0].transpose(0, 1).reshape(m, H)[:n])
        if tail:
            out.append(qkv.new_zeros(tail, H))
        return torch.cat(out)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.hidden, cfg.mlp_ratio * cfg.hidden)
        self.out = nn.Linear(cfg.mlp_ratio * cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.out(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | tuple[torch.Tensor, ...] | None,
                packed: Packed | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), attn_mask, packed)
        return x + self.mlp(self.ln2(x))


class MediaFM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        if cfg.modality_dims and sum(cfg.modality_dims) != cfg.input_dim:
            raise ConfigError(None, f"modality_dims {cfg.modality_dims} do not add up to input_dim={cfg.input_dim}")
        h = cfg.hidden
        self.in_proj = nn.Linear(cfg.input_dim, h)
        self.meta_proj = nn.Linear(cfg.meta_dim, h) if cfg.meta_dim else None
        self.time_proj = nn.Linear(2, h) if cfg.time_features else None
        self.cls_token = nn.Parameter(torch.zeros(h))
        self.no_meta_token = nn.Parameter(torch.zeros(h))  # [GLOBAL] when a title has no metadata
        self.mask_token = nn.Parameter(torch.zeros(h))  # replaces masked shots after projection
        self.pos_emb = nn.Embedding(cfg.max_shots, h)
        self.type_emb = nn.Embedding(N_SPECIAL + 1, h)  # 0 = CLS, 1 = GLOBAL, 2 = shot
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(h)
        self.out_proj = nn.Linear(h, cfg.input_dim)
        # Neighbour heads (training only): each shot's output must pick out the shots before and after it.
        self.next_proj = nn.Linear(h, cfg.input_dim) if cfg.neighbor_weight else None
        self.prev_proj = nn.Linear(h, cfg.input_dim) if cfg.neighbor_weight else None
        self.boundary_proj = nn.Linear(h, 1) if cfg.boundary_weight else None  # training only, like the above
        self.apply(self._init_weights)
        for name in ("cls_token", "no_meta_token", "mask_token"):
            nn.init.normal_(getattr(self, name), std=0.02)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ forward
    def encode(self, fused: torch.Tensor, meta: torch.Tensor | None, pad_mask: torch.Tensor | None,
               mask_positions: torch.Tensor | None = None, times: torch.Tensor | None = None,
               keep_positions: torch.Tensor | None = None, all_layers: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Hidden states after the final norm: [B, 2 + N, h] ([CLS], [GLOBAL], shots); with
        all_layers, also every block's output (before the final norm). pad_mask None: no padding
        (without the distance bias, attention then needs no mask, which lets GPUs use flash kernels)."""
        B, N, _ = fused.shape
        cfg = self.config
        if N > cfg.max_shots:
            raise ValueError(f"{N} shots exceed max_shots={cfg.max_shots}; use embed_title for long titles")
        cls = (self.cls_token + self.type_emb.weight[0]).expand(B, -1)
        glob = self.no_meta_token.expand(B, -1)
        if self.meta_proj is not None and meta is not None:
            # A zero metadata row means "absent": text embeddings are unit-norm, so 0 is never real.
            present = meta.abs().sum(-1, keepdim=True) > 0
            glob = torch.where(present, self.meta_proj(meta), glob)
        specials = torch.stack([cls, glob + self.type_emb.weight[1]], 1)  # [B, 2, h]
        bias = distance_bias(N, cfg.n_heads, fused.device) if cfg.distance_bias else None
        packed = None
        real = None if pad_mask is None else torch.cat([pad_mask.new_ones(B, N_SPECIAL), pad_mask], dim=1)
        # Only on a CPU, where the padding's products cost their time; on a GPU finding the real
        # rows would wait for the device, and padded products cost little.
        if PACK_ON_CPU and real is not None and fused.device.type == "cpu" and not bool(pad_mask.all()):
            counts = real.sum(1)
            prefix = bool((real == (torch.arange(real.shape[1]) < counts[:, None])).all())
            spans = tuple(counts.tolist()) if prefix and ATTEND_BY_WINDOW else None
            index = torch.nonzero(real.reshape(-1), as_tuple=True)[0]
            tail, attend = 0, None
            if spans is not None and cpu_bf16_buckets(fused.device):
                tail = round_up(len(index), ROW_BUCKET) - len(index)
                attend = tuple(round_up(n, WINDOW_BUCKET) for n in spans)
            packed = Packed(index, B, N_SPECIAL + N, spans, tail, attend)
            # The input projection (2,688 -> h, the widest product of the forward) on the real
            # shots only; packed rows are each window's [CLS], [GLOBAL], then its real shots.
            rows = torch.nonzero(pad_mask.reshape(-1), as_tuple=True)[0]
            xs = self._embed_shots(fused, mask_positions, keep_positions, times, rows)
            specials = specials.to(xs.dtype)
            pieces = []
            for j, seg in enumerate(xs.split((counts - N_SPECIAL).tolist())):
                pieces += [specials[j], seg]
            if tail:
                pieces.append(xs.new_zeros(tail, xs.shape[-1]))
            x = torch.cat(pieces)
        else:
            x = self._embed_shots(fused, mask_positions, keep_positions, times)
            x = torch.cat([specials.to(x.dtype), x], dim=1)
        if packed is not None and packed.spans is not None:
            # Per window, no padding to mask: a window of n tokens takes the top-left [n, n] block of
            # the bias, exactly its own distances; contiguous, or SDPA leaves its fused CPU kernel
            # for the unfused path (bmm + softmax), which took longer than the padding it saves.
            # One copy per distinct length, shared by its windows and every layer.
            # In the dtype attention runs in (bf16 under CPU autocast, while x, the residual stream,
            # stays float32), so no layer casts it again.
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
            if packed.attend is None:
                blocks = {} if bias is None else {n: bias[None, :, :n, :n].to(dtype).contiguous()
                                                  for n in set(packed.spans)}
                attn_mask = None if bias is None else tuple(blocks[n] for n in packed.spans)
            else:  # windows padded to `attend` tokens: their padded keys masked
                blocks = {(n, m): _padded_bias(bias, n, m, cfg.n_heads, dtype, x.device)
                          for n, m in set(zip(packed.spans, packed.attend))}
                attn_mask = tuple(blocks[nm] for nm in zip(packed.spans, packed.attend))
        else:
            attn_mask = None if real is None else real[:, None, None, :]
            if bias is not None:
                bias = bias.to(x.dtype)
                attn_mask = bias[None] if attn_mask is None else bias[None].masked_fill(~attn_mask, float("-inf"))
        layers = []
        for block in self.blocks:
            x = block(x, attn_mask, packed)
            if all_layers:
                layers.append(x if packed is None else packed.unpack(x))
        out = self.ln_f(x)
        out = out if packed is None else packed.unpack(out)
        return (out, layers) if all_layers else out

    def _embed_shots(self, fused: torch.Tensor, mask_positions: torch.Tensor | None,
                     keep_positions: torch.Tensor | None, times: torch.Tensor | None,
                     rows: torch.Tensor | None = None) -> torch.Tensor:
        """Each shot's input token: projected vector ([MASK] where masked and not kept) + position
        + type (+ time). [B, N, h]; with `rows` (flat indices into [B * N]), only those: [len(rows), h]."""
        N, D = fused.shape[1], fused.shape[2]
        replace = None
        if mask_positions is not None:
            replace = mask_positions if keep_positions is None else mask_positions & ~keep_positions
        if rows is None:
            x, pos = self.in_proj(fused), self.pos_emb.weight[:N]
        else:
            flat = fused.reshape(-1, D)
            x = rows_at_bucketed_size(lambda i: self.in_proj(flat.index_select(0, i)), rows, ROW_BUCKET)
            pos = self.pos_emb.weight[rows % N]
            replace = None if replace is None else replace.reshape(-1)[rows]
            times = None if times is None else times.reshape(-1, times.shape[-1])[rows]
        if replace is not None:
            x = torch.where(replace[..., None], self.mask_token.to(x.dtype), x)
        x = x + pos + self.type_emb.weight[N_SPECIAL]
        if self.time_proj is not None and times is not None:
            x = x + self.time_proj(_time_features(times))
        return x

    def forward(self, fused: torch.Tensor, meta: torch.Tensor | None, pad_mask: torch.Tensor | None,
                mask_positions: torch.Tensor | None = None, times: torch.Tensor | None = None,
                keep_positions: torch.Tensor | None = None, targets: torch.Tensor | None = None,
                predict_all: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Predicted fused vectors [B, N, D] and, when shots are masked, the MSM loss.

        Args:
            fused: [B, N, D] fused shot vectors, the model's input (padding rows arbitrary).
            meta: [B, D_text] metadata embeddings (zero row = no metadata) or None.
            pad_mask: bool [B, N], True for real shots; None when every shot is real.
            mask_positions: bool [B, N], shots that carry the loss; replaced by [MASK] unless kept.
            keep_positions: bool [B, N], masked shots whose real input stays visible (BERT's "unchanged").
            times: [B, N, 2] (start_s, duration_s) when the config uses time features.
            targets: [B, N, D] what masked shots must predict when it differs from `fused`
                (training replaced some inputs by other shots); default `fused`.
            predict_all: False (training) returns no predictions and runs the output heads only
                on the rows the losses read: the masked shots, and the neighbour losses' queries.
                At 20% masking on 2,688-d vectors that skips about a quarter of a step's matrix
                products; the loss is the same (tests/test_training_objectives.py).
        """
        if mask_positions is not None and self.training and self.config.modality_dropout and self.config.modality_dims:
            targets = fused if targets is None else targets
            fused = drop_modalities(fused, self.config.modality_dims, self.config.modality_dropout)
        shots = self.encode(fused, meta, pad_mask, mask_positions, times, keep_positions)[:, N_SPECIAL:]
        if predict_all:
            pred = self.out_proj(shots)
            heads = (pred, None, None)
            if self.next_proj is not None and mask_positions is not None:
                heads = (pred, self.next_proj(shots), self.prev_proj(shots))
        else:
            pred, flat = None, shots.reshape(-1, shots.shape[-1])
            heads = tuple(None if proj is None else _rows_of(proj, flat)
                          for proj in (self.out_proj, self.next_proj, self.prev_proj))
        if mask_positions is None:
            return pred, None
        target = fused if targets is None else targets
        real = torch.ones_like(mask_positions) if pad_mask is None else pad_mask
        loss = OBJECTIVES[self.config.objective](heads[0], target, mask_positions & real, real, self.config.temperature)
        if heads[1] is not None:
            loss = loss + self.config.neighbor_weight * neighbor_loss(heads[1], heads[2], target, real,
                                                                      self.config.temperature)
        if self.boundary_proj is not None:
            change, valid = boundary_change(target, real)
            err = (self.boundary_proj(shots)[..., 0].float() - change) ** 2
            loss = loss + self.config.boundary_weight * (err * valid).sum() / valid.sum().clamp(min=1)
        return pred, loss

    # ------------------------------------------------------------ inference on whole titles
    @torch.no_grad()
    def embed_title(self, fused: np.ndarray, meta: np.ndarray | None = None, times: np.ndarray | None = None,
                    return_cls: bool = False, stride: int | None = None, batch_size: int = 8
                    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Contextual embeddings [N, embed_dim] of one title (and its [CLS] embedding [h] if
        return_cls); `config.readout` decides what each shot's vector is.

        Titles longer than `max_shots` are covered by windows of `max_shots` shots every `stride`
        shots (default max_shots // 2); each shot's output comes from the window where it is most
        central, so it sees at least (max_shots - stride) / 2 shots of context on each side away
        from the title's ends. stride=1 gives every shot its own centred window (exactly
        independent of any window grid, at N forward passes). [CLS] is the mean of the windows'
        [CLS] outputs.
        """
        was_training = self.training
        self.eval()
        dev = next(self.parameters()).device
        fused = np.asarray(fused, dtype=np.float32)
        N, W = len(fused), self.config.max_shots
        starts, owner = window_plan(N, W, stride or max(1, W // 2))
        meta_t = None
        if meta is not None and self.meta_proj is not None:
            meta_t = torch.as_tensor(np.asarray(meta, np.float32), device=dev)[None]
        out = np.zeros((N, self.config.embed_dim), np.float32)
        cls = np.zeros(self.config.hidden, np.float64)
        for b in range(0, len(starts), batch_size):
            chunk = starts[b:b + batch_size]
            n = min(W, N)
            x = torch.as_tensor(np.stack([fused[s:s + n] for s in chunk]), device=dev)
            t = None
            if times is not None:
                t = torch.as_tensor(np.stack([np.asarray(times, np.float32)[s:s + n] for s in chunk]), device=dev)
            pad = torch.ones(len(chunk), n, dtype=torch.bool, device=dev)
            m = None if meta_t is None else meta_t.expand(len(chunk), -1)
            h, layers = self.encode(x, m, pad, times=t, all_layers=True)
            cls += h[:, 0].float().sum(0).cpu().numpy()
            window = Window(x, m, pad, t, h[:, N_SPECIAL:], layers)
            shots = READOUTS[self.config.readout].vectors(self, window).float().cpu().numpy()
            for j, s in enumerate(chunk):
                rows = np.nonzero(owner[s:s + n] == b + j)[0]
                out[s + rows] = shots[j, rows]
        self.train(was_training)
        return (out, (cls / len(starts)).astype(np.float32)) if return_cls else out


# ---------------------------------------------------------------- read-outs
class Window(NamedTuple):
    """What a read-out sees of a batch of windows: the model's input and its states."""

    fused: torch.Tensor  # [B, N, D] the shots' fused vectors
    meta: torch.Tensor | None  # [B, D_text] or None
    pad: torch.Tensor  # bool [B, N], True for real shots
    times: torch.Tensor | None  # [B, N, 2] or None
    shots: torch.Tensor  # [B, N, h] the shots' final hidden states
    layers: list[torch.Tensor]  # every block's output [B, 2 + N, h], before the final norm


class Readout(NamedTuple):
    size: Callable[[ModelConfig], int]  # length of each shot's vector
    vectors: Callable[[MediaFM, Window], torch.Tensor]  # -> [B, N, size]
    # the vector's parts, sizes in order (a probe weighs each part equally); None: one part
    parts: Callable[[ModelConfig], tuple[int, ...]] | None = None

    def part_sizes(self, config: ModelConfig) -> tuple[int, ...]:
        return (self.size(config),) if self.parts is None else tuple(self.parts(config))


def register_readout(name: str, size: Callable[[ModelConfig], int],
                     parts: Callable[[ModelConfig], tuple[int, ...]] | None = None) -> Callable:
    """Register `fn(model, window) -> [B, N, size(config)]` as read-out `name`, and as `name+input`
    (whose parts are the input, then `name`'s parts)."""

    def deco(fn: Callable[[MediaFM, Window], torch.Tensor]) -> Callable:
        base = Readout(size, fn, parts)
        _register_readout(name)(base)
        _register_readout(name + "+input")(Readout(lambda c: c.input_dim + size(c),
                                                   lambda m, w: _join_input(w.fused, fn(m, w)),
                                                   lambda c: (c.input_dim, *base.part_sizes(c))))
        return fn
    return deco


@register_readout("hidden", size=lambda c: c.hidden)
def _hidden(model: MediaFM, w: Window) -> torch.Tensor:
    return w.shots


@register_readout("proj", size=lambda c: c.input_dim)
def _proj(model: MediaFM, w: Window) -> torch.Tensor:
    return model.out_proj(w.shots)


def _normed_layers(w: Window) -> list[torch.Tensor]:
    # Every block's output, each normalised (no affine): lower layers keep more of the shot itself
    # and its neighbours, upper ones more of the title.
    return [F.layer_norm(x[:, N_SPECIAL:], x.shape[-1:]) for x in w.layers]


@register_readout("layers", size=lambda c: c.hidden)
def _layers(model: MediaFM, w: Window) -> torch.Tensor:
    return torch.stack(_normed_layers(w)).mean(0)


@register_readout("stack", size=lambda c: c.n_layers * c.hidden)
def _stack(model: MediaFM, w: Window) -> torch.Tensor:
    return torch.cat(_normed_layers(w), -1)


def _title_summary(w: Window) -> torch.Tensor:
    """[B, N, h] the mean of the window's real shots' final states (each title's summary in the
    model's space), normalised as the layers are, repeated for every shot."""
    real = w.pad[..., None].to(w.shots.dtype)
    mean = (w.shots * real).sum(1) / real.sum(1).clamp(min=1)
    return F.layer_norm(mean, mean.shape[-1:])[:, None].expand_as(w.shots)


@register_readout("stack+title", size=lambda c: (c.n_layers + 1) * c.hidden,
                  parts=lambda c: (c.n_layers * c.hidden, c.hidden))
def _stack_title(model: MediaFM, w: Window) -> torch.Tensor:
    """`stack` and the title's summary: what a clip's shots say in context, and what the whole
    title (window) says, side by side. Title-level labels (genre, a series' tone) are a property of
    every shot of a title; a shot's own state carries them only as far as pretraining asked it to."""
    return torch.cat([_stack(model, w), _title_summary(w)], -1)


@register_readout("masked", size=lambda c: c.input_dim)
def _masked(model: MediaFM, w: Window) -> torch.Tensor:
    """Each shot's prediction from its context with the shot itself masked, over MASKED_PASSES
    passes that each mask every MASKED_PASSES-th shot (so 80% of the neighbours stay visible)."""
    x = w.fused
    n = x.shape[1]
    pos = torch.arange(n, device=x.device)
    pred = torch.zeros_like(x)
    for k in range(min(MASKED_PASSES, n)):
        mask = (pos % MASKED_PASSES == k).expand(x.shape[0], -1)
        h = model.encode(x, w.meta, w.pad, mask, w.times)
        pred = torch.where(mask[..., None], model.out_proj(h[:, N_SPECIAL:]).to(pred.dtype), pred)
    return pred


# Predictions for chosen rows of the flattened [B * N] shot grid: a tensor of every row, or a
# function computing only the rows asked for (forward(predict_all=False)).
Rows = Callable[[torch.Tensor], torch.Tensor]


class HeadRows(NamedTuple):
    """A linear head's predictions for chosen rows of the flattened shot grid, computed when asked
    for: row j is `proj(flat[j + shift])`. Keeping the head and its inputs (not only a function)
    lets InfoNCE score many queries through the head's weights (`_cosine_logits`)."""

    proj: nn.Linear
    flat: torch.Tensor  # [B * N, h] the head's inputs
    shift: int = 0  # row j reads input j + shift (the neighbour heads predict the next or previous shot)
    # (sorted rows, their predictions) already computed by another loss on this head; every row
    # `_cosine_logits` then asks for must be among them (its queries are read, not predicted again)
    known: tuple[torch.Tensor, torch.Tensor] | None = None

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        return self.flat.index_select(0, idx + self.shift if self.shift else idx)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return rows_at_bucketed_size(lambda i: self.proj(self.inputs(i)), idx, HEAD_ROW_BUCKET)

    def predicted(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows `idx`' predictions: read from `known` when set (no check that it holds them, which
        would wait for a GPU), else computed."""
        if self.known is None:
            return self(idx)
        rows, pred = self.known
        return pred.index_select(0, torch.searchsorted(rows, idx))


def _rows_of(proj: nn.Module, flat: torch.Tensor) -> Rows:
    return HeadRows(proj, flat)


def _as_rows(pred: torch.Tensor | Rows) -> Rows:
    if isinstance(pred, torch.Tensor):
        flat = pred.reshape(-1, pred.shape[-1])
        return lambda idx: flat[idx]
    return pred


def msm_loss(pred: torch.Tensor | Rows, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance (1 - cos) between predictions and targets over masked positions."""
    idx = torch.nonzero(masked.reshape(-1), as_tuple=True)[0]
    return _msm_of(_as_rows(pred)(idx), target, idx)


def _msm_of(p: torch.Tensor, target: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """msm_loss from the predictions `p` of the masked rows `idx`."""
    true = target.reshape(-1, target.shape[-1]).index_select(0, idx)
    p, true = p.float(), true.float()
    # F.cosine_similarity's value (lengths floored at 1e-12 rather than 1e-8) in fewer passes over
    # the [masked, D] rows: it divides each by its length before the product
    cos = torch.linalg.vecdot(p, true) * _inverse_lengths(p) * _inverse_lengths(true)
    return (1.0 - cos).sum() / max(len(idx), 1)


@register_objective("cosine")
def _cosine_objective(pred, target, masked, real, temperature):
    return msm_loss(pred, target, masked)


MAX_QUERIES = 512  # InfoNCE: predictions scored per loss and batch (a random subset beyond this)
MAX_CANDIDATES = 2048  # InfoNCE: candidate shots per batch (the queries' own targets always among them)


@register_objective("contrastive")
def contrastive_loss(pred: torch.Tensor | Rows, target: torch.Tensor, masked: torch.Tensor, real: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """InfoNCE over masked positions: each prediction must score its own target's cosine above
    every other real shot of the batch (its title's other shots are the hard negatives).

    Regression to a cosine target is satisfied by the mean of the plausible shots, which washes
    out what tells one shot from its neighbours; here such a blurred prediction loses to them.
    Batches of long windows (thousands of shots) score a random MAX_QUERIES of the predictions
    against MAX_CANDIDATES shots: the full query x candidate product grows with the square of the
    batch (measured 9 s a step at 16 windows of ~400 shots on 2 CPU cores, most of it here).
    """
    B, N, D = target.shape
    rows = _as_rows(pred)
    q_idx, c_idx = infonce_rows(masked, real)
    if len(q_idx) == 0:
        return rows(q_idx).sum() * 0.0
    logits = _cosine_logits(rows, q_idx, _candidates(target.reshape(B * N, D), c_idx)) / temperature
    if c_idx is None:
        logits = logits.masked_fill(~real.reshape(1, -1), float("-inf"))
        return F.cross_entropy(logits, q_idx)
    return F.cross_entropy(logits, torch.arange(len(q_idx), device=logits.device))


def infonce_rows(masked: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(queries, candidates) of one InfoNCE loss, as rows of the flattened [B * N] shot grid: every
    masked row and every row of the batch (candidates None: padding is excluded by the caller)
    when they fit MAX_QUERIES and MAX_CANDIDATES; else a random MAX_QUERIES of the masked rows, and
    candidates that start with those queries' own rows (query i's target is candidate i) followed
    by other real rows at random."""
    real_flat = real.reshape(-1)
    q_idx = torch.nonzero(masked.reshape(-1), as_tuple=True)[0]
    if len(q_idx) == 0 or (len(q_idx) <= MAX_QUERIES and int(real_flat.sum()) <= MAX_CANDIDATES):
        return q_idx, None
    dev = q_idx.device
    if len(q_idx) > MAX_QUERIES:
        q_idx = q_idx[torch.randperm(len(q_idx), device=dev)[:MAX_QUERIES]]
    others = torch.nonzero(real_flat, as_tuple=True)[0]
    others = others[~torch.isin(others, q_idx)]
    others = others[torch.randperm(len(others), device=dev)[:max(0, MAX_CANDIDATES - len(q_idx))]]
    return q_idx, torch.cat([q_idx, others])


FACTORED_LOGITS = True  # InfoNCE through the head's weights when that is fewer products (_cosine_logits)


def _cosine_logits(rows: Rows, q_idx: torch.Tensor, cand: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """[Q, C] float32 cosine between the predictions of rows `q_idx` and the candidates `cand`
    (`_candidates`: rows and their inverse lengths, no gradient).

    The products take the candidates as they are and the [Q, C] scores are scaled by both lengths
    afterwards: a cosine is (p . c) / (|p| |c|) either way, and scaling 2,048 columns of scores is
    cheaper than writing 2,048 unit-length 2,688-d rows (and, from a bf16 cache, exact where a unit
    row would be rounded again).

    For a linear head, pred . c = h . (W^T c) + b . c, so the scores can go through the candidates
    projected to the head's input width (C x h) instead of through the D-wide predictions: the
    products cost 4 C D h + 6 Q C h instead of 4 Q C D (forward and backward; the predictions are
    still computed, for their lengths). With 512 queries, 2,048 candidates, D = 2,688 and h = 256
    that is 13.4 against 9.3 GFLOP a loss, three losses a step; with fewer than ~300 queries the
    plain form is cheaper and is used.
    """
    c, c_inv = cand
    if isinstance(rows, HeadRows) and FACTORED_LOGITS:
        d_out, h = rows.proj.weight.shape
        if len(q_idx) * (4 * d_out - 6 * h) > 4 * d_out * h:
            x = rows.inputs(q_idx)
            q_inv = _inverse_lengths(rows.predicted(q_idx))
            w, b = rows.proj.weight, rows.proj.bias
            cand_w = c @ w.to(c.dtype)  # [C, h]: each candidate seen through the head
            x = x.to(c.dtype)
            raw = x @ cand_w.T if b is None else torch.addmm(c @ b.to(c.dtype), x, cand_w.T)
            return raw.float() * q_inv[:, None] * c_inv
    q = rows.predicted(q_idx) if isinstance(rows, HeadRows) else rows(q_idx)
    return (q.to(c.dtype) @ c.T).float() * _inverse_lengths(q)[:, None] * c_inv


def _inverse_lengths(x: torch.Tensor) -> torch.Tensor:
    """1 / |row| in float32, F.normalize's floor of 1e-12 on the length."""
    return torch.linalg.vector_norm(x, dim=-1, dtype=torch.float32).clamp_min(1e-12).reciprocal()


def _shifted(rows: Rows, k: int) -> Rows:
    """Rows whose row j is `rows`' row j + k."""
    if isinstance(rows, HeadRows):
        return rows._replace(shift=rows.shift + k, known=None)
    return lambda idx: rows(idx + k)


@torch.no_grad()
def _candidates(flat: torch.Tensor, idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE candidates (no gradient): the rows `idx` of `flat` (all rows when None) in the dtype
    the products run in (bfloat16 under autocast; a bf16 training cache's rows need no cast), and
    their inverse lengths in float32, with which `_cosine_logits` scales the scores."""
    rows = flat if idx is None else flat.index_select(0, idx)
    inv = _inverse_lengths(rows)
    kind = rows.device.type
    if torch.is_autocast_enabled(kind):
        rows = rows.to(torch.get_autocast_dtype(kind))
    return rows, inv


def neighbor_loss(next_pred: torch.Tensor | Rows, prev_pred: torch.Tensor | Rows, target: torch.Tensor,
                  real: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE for every real shot's predictions of the real shots right after and before it.

    A contextual embedding that must name its neighbours carries what comes next and what came
    before (a change of scene, a cut to another character) into the shot's own vector, where a
    clip pooled from its shots can see it. Same candidates as `contrastive_loss`.
    """
    # Row j of `nxt`: shot j predicted from shot j - 1 (queried only where has_prev: same window);
    # of `prv`: shot j predicted from shot j + 1.
    nxt, prv = (_shifted(_as_rows(p), k) for p, k in ((next_pred, -1), (prev_pred, 1)))

    has_prev = torch.zeros_like(real)
    has_prev[:, 1:] = real[:, 1:] & real[:, :-1]
    has_next = torch.zeros_like(real)
    has_next[:, :-1] = real[:, :-1] & real[:, 1:]
    return 0.5 * (contrastive_loss(nxt, target, has_prev, real, temperature)
                  + contrastive_loss(prv, target, has_next, real, temperature))


@torch.no_grad()
def boundary_change(target: torch.Tensor, real: torch.Tensor, window: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, N] target, [B, N] bool valid): for each shot followed by another in its window, the
    change at the cut after it, standardised within the window.

    The change is TextTiling's (Hearst 1997; `mediafm.apps.segmentation.window_means`) on the true
    fused vectors: 1 - cosine between the mean of the `window` shots up to the cut and of the
    `window` after it, the vectors centred on the window's mean first (what every shot of a title
    shares does not count). Unsupervised: a scene change is where the shots on either side differ
    most, on any catalog; scene ends were where the contextual vectors were weakest (the last shot
    of a scene found at AP 0.295 from them, 0.406 from this score on the fused vectors, on the
    unmarked-scenes catalog: docs/narrative-benchmark.md)."""
    # Computed from dot products, not from the centred unit vectors themselves: materialising
    # those, their cumulative sum and its gathers took 788 ms for a long-form batch ([16, 512,
    # 2,688]), the 2 * window diagonals of each window's Gram matrix and one product with the
    # mean 52 ms (alternated, 5 rounds; same values to float rounding: tests/test_training_objectives.py).
    x = target.float()
    B, N, _ = x.shape
    r = real.to(x.dtype)
    counts = r.sum(1, keepdim=True).clamp(min=1)
    mean = torch.bmm(r[:, None, :], x)[:, 0] / counts  # [B, D] over the real shots
    xm = torch.bmm(x, mean[:, :, None])[..., 0]  # [B, N]
    mm = (mean * mean).sum(-1, keepdim=True)

    # x_i . x_{i+k} window by window: one window's rows stay in the CPU's cache across the 2 *
    # window products (11 ms against 110 ms over the whole long-form batch at once)
    diag = [x.new_zeros(B, max(N - k, 0)) for k in range(2 * window)]
    for j in range(B):
        for k in range(min(2 * window, N)):
            diag[k][j] = torch.linalg.vecdot(x[j, :N - k], x[j, k:])

    def centred(k: int) -> torch.Tensor:  # [B, N - k]: (x_i - mean) . (x_{i+k} - mean), 0 at padding
        return (diag[k] - xm[:, :N - k] - xm[:, k:] + mm) * (r[:, :N - k] * r[:, k:])

    cdots = [centred(k) for k in range(min(2 * window, N))]
    norm = cdots[0].clamp(min=0).sqrt()
    inv = torch.where(norm > 1e-12, 1 / norm.clamp(min=1e-12), torch.zeros_like(norm))  # F.normalize's eps
    # gram[k][:, w + i] = u_i . u_{i+k} for the centred unit vectors u, zero outside the window
    gram = [x.new_zeros(B, N + 2 * window) for _ in range(2 * window)]
    for k, c in enumerate(cdots):
        gram[k][:, window:window + N - k] = c * inv[:, :N - k] * inv[:, k:]
    cut = torch.arange(1, N, device=x.device)  # the cut before shot `cut`, after shot `cut - 1`

    def at(k: int, i: torch.Tensor) -> torch.Tensor:  # gram[k] at shot indices i (may be < 0)
        return gram[k][:, i + window]

    # left: the `window` shots up to the cut (a = cut - 1 - p), right: the `window` after (b = cut + q)
    dot = sum(at(p + q + 1, cut - 1 - p) for p in range(window) for q in range(window))
    left2 = sum(at(abs(p - p2), cut - 1 - max(p, p2)) for p in range(window) for p2 in range(window))
    right2 = sum(at(abs(q - q2), cut + min(q, q2)) for q in range(window) for q2 in range(window))
    eps = 1e-8
    change = 1 - dot / (left2.clamp(min=0).sqrt().clamp(min=eps) * right2.clamp(min=0).sqrt().clamp(min=eps))
    return standardised_cut_change(change, real)


def standardised_cut_change(change: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, N] target, [B, N] valid) from the change at each cut ([B, N - 1], the cut after shot
    0 .. N - 2): shot i gets the cut after it when a real shot follows in its window, standardised
    over those shots of the window; 0 elsewhere."""
    B, N = real.shape
    valid = torch.zeros_like(real)
    valid[:, :-1] = real[:, 1:]  # shot i has a next shot in the window
    out = torch.zeros(B, N, device=change.device)
    out[:, :-1] = change
    v = valid.float()
    k = v.sum(1, keepdim=True).clamp(min=1)
    mean = (out * v).sum(1, keepdim=True) / k
    std = (((out - mean) ** 2 * v).sum(1, keepdim=True) / k).sqrt().clamp(min=1e-6)
    return (out - mean) / std * v, valid


@register_objective("both")
def _both_objective(pred, target, masked, real, temperature):
    idx = torch.nonzero(masked.reshape(-1), as_tuple=True)[0]
    p = _as_rows(pred)(idx)
    if isinstance(pred, HeadRows):
        # the contrastive loss's queries are masked rows too: it reads their predictions from these
        # instead of running them through the head again
        pred = pred._replace(known=(idx, p))
    return _msm_of(p, target, idx) + contrastive_loss(pred, target, masked, real, temperature)


def _padded_bias(bias: torch.Tensor | None, n: int, m: int, n_heads: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    """[1, heads, m, m]: a window of n tokens padded to m, its [n, n] block of the distance bias
    (zeros without one), keys n.. at -inf (the padded queries' rows stay finite, so their softmax
    is defined; their outputs are dropped)."""
    out = torch.zeros(1, n_heads, m, m, dtype=dtype, device=device)
    if bias is not None:
        out[0, :, :n, :n] = bias[:, :n, :n]
    out[..., n:] = float("-inf")
    return out


@functools.lru_cache(maxsize=16)
def distance_bias(n: int, n_heads: int, device=None) -> torch.Tensor:
    """[heads, 2 + n, 2 + n] additive attention bias: -slope_h * |i - j| between shots, slopes
    4**-(h + 1); [CLS] and [GLOBAL] are at distance 0 from everything. Cached: every forward pass
    of a window length asks for the same tensor (callers never modify it)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)
    dist = torch.zeros(N_SPECIAL + n, N_SPECIAL + n, device=device)
    dist[N_SPECIAL:, N_SPECIAL:] = (pos[:, None] - pos[None, :]).abs()
    slopes = 4.0 ** -torch.arange(1, n_heads + 1, device=device, dtype=torch.float32)
    return -slopes[:, None, None] * dist


def _join_input(fused: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The "+input" read-outs: [unit input, unit read-out] / sqrt(2), a unit vector."""
    return torch.cat([F.normalize(fused.float(), dim=-1), F.normalize(out.float(), dim=-1)], -1) / 2 ** 0.5


def _time_features(times: torch.Tensor) -> torch.Tensor:
    # log scale: start times span hours, durations span fractions of a second to minutes
    return torch.log1p(times.float().clamp(min=0))


def window_plan(n: int, window: int, stride: int) -> tuple[list[int], np.ndarray]:
    """Window starts covering n shots and, per shot, the index of the window it is most central in.

    Window starts lie on a grid of `stride` from shot 0 (the last one clamped to n - window), so the
    plan depends only on the title; ties go to the earlier window.
    """
    if n <= window:
        return [0], np.zeros(n, np.int64)
    starts = sorted(set(list(range(0, n - window, stride)) + [n - window]))
    s = np.asarray(starts)[None, :]
    i = np.arange(n)[:, None]
    inside = (i >= s) & (i < s + window)
    # distance from the window edge nearest to the shot: larger = more central
    margin = np.where(inside, np.minimum(i - s, s + window - 1 - i), -1)
    return starts, margin.argmax(1)


# ---------------------------------------------------------------- save / load
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_pretrained(model: MediaFM, model_dir: str | Path, extra: dict | None = None) -> None:
    """Write safetensors weights + JSON config (atomically) into model_dir."""
    from safetensors.torch import save_file

    from mediafm.store.atomic import atomic_path, write_json_atomic

    model_dir = Path(model_dir)
    model = getattr(model, "module", model)  # unwrap DDP
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(model_dir / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    write_json_atomic({"model": model.config.to_dict(), **(extra or {})}, model_dir / CONFIG_FILE)


def load_pretrained(model_dir: str | Path, device: str | torch.device = "cpu") -> MediaFM:
    """A MediaFM in eval mode from a directory written by `save_pretrained` / `mediafm pretrain`."""
    from safetensors.torch import load_file

    from mediafm.errors import StoreError

    model_dir = Path(model_dir)
    cfg_file = model_dir / CONFIG_FILE
    if not cfg_file.exists() or not (model_dir / WEIGHTS_FILE).exists():
        raise StoreError(model_dir, f"not a mediafm model directory (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        cfg = ModelConfig.from_dict(json.loads(cfg_file.read_text(encoding="utf-8"))["model"])
        model = MediaFM(cfg)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # ValueError: bad JSON, UTF-8, values
        raise StoreError(cfg_file, f"unreadable model config ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        state = load_file(str(model_dir / WEIGHTS_FILE), device=str(device))
    except Exception as exc:  # safetensors raises its own SafetensorError for a damaged file
        raise StoreError(model_dir / WEIGHTS_FILE,
                         f"damaged weights file ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:2]
        raise StoreError(model_dir / WEIGHTS_FILE, f"weights do not fit {CONFIG_FILE} ({' '.join(first)[:200]})") from None
    return model.to(device).eval()


def train_flops(cfg: ModelConfig, n_shots: int, mask_ratio: float = 0.2, batch: int = 1) -> float:
    """Model FLOPs of one training step on one window of `n_shots` shots: the matrix products the
    step runs (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022, appendix B: 2 FLOPs per
    multiply-add, a product's backward twice its forward), so

        6 x (parameters of the blocks' products) x tokens  +  12 x layers x hidden x tokens^2

    for the blocks, the second term being attention's two products (QK^T and AV) over `tokens` =
    n_shots + 2 ([CLS], [GLOBAL]), plus the shot projections on the rows they run on: the input
    projection on every shot (4x: its input needs no gradient), the output projection on the
    masked shots (`mask_ratio`), and each neighbour head (when trained) on the shots its loss
    queries (at most MAX_QUERIES a batch of `batch` windows). Embedding lookups, norms, biases,
    [GLOBAL]'s metadata projection (one token), the losses and the optimiser are not model FLOPs.
    MFU = train_flops x windows per second / the processor's measured or dense peak.
    """
    h, D = cfg.hidden, cfg.input_dim
    queries = min(n_shots - 1, MAX_QUERIES / batch) if cfg.neighbor_weight > 0 else 0
    shots = D * h * (4 * n_shots + 6 * mask_ratio * n_shots + 2 * 6 * queries)
    return block_train_flops(cfg, n_shots + N_SPECIAL) + shots


def block_train_flops(cfg: ModelConfig, tokens: float) -> float:
    """`train_flops`' term for the blocks over one window of `tokens` tokens (shots + [CLS] +
    [GLOBAL]): their linear layers' products (6 x parameters x tokens) and attention's two products."""
    h, L = cfg.hidden, cfg.n_layers
    blocks = L * (4 * h * h + 2 * cfg.mlp_ratio * h * h)  # qkv + proj, fc + out
    return 6 * blocks * tokens + 12 * L * h * tokens * tokens


def infer_flops(cfg: ModelConfig, n_shots: int) -> float:
    """Model FLOPs of a forward pass over one window without masking (`embed_title`): the blocks,
    attention and the input projection (2 FLOPs per multiply-add), counted as `train_flops` does."""
    h, L, s = cfg.hidden, cfg.n_layers, n_shots + N_SPECIAL
    blocks = L * (4 * h * h + 2 * cfg.mlp_ratio * h * h)
    return 2 * blocks * s + 2 * cfg.input_dim * h * n_shots + 4 * L * h * s * s


__all__ = ["ModelConfig", "MediaFM", "distance_bias", "PRESETS", "OBJECTIVES", "READOUTS", "SIZE_FIELDS", "tiny", "small",
           "medium", "base", "register_preset", "register_objective", "register_readout", "msm_loss",
           "contrastive_loss", "window_plan", "save_pretrained", "load_pretrained", "train_flops", "block_train_flops",
           "infer_flops"]
