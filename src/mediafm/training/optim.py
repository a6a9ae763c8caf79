"""Optimiser: Muon for hidden 2-D weight matrices, AdamW for everything else; warmup + cosine.

Muon orthogonalises the momentum of a weight matrix (Newton-Schulz), which only makes sense for
matrices that map hidden activations to hidden activations. Embeddings, [CLS]/[GLOBAL]/[MASK]
vectors, norms, biases and the input/output projections (whose shapes are set by the data, not
by the hidden size) go to AdamW, as the Muon authors and torch's docs recommend.

On a GPU, `BatchedMuon` does torch's Muon step for all matrices of one shape at once (the
Newton-Schulz iterations as batched bfloat16 products: ~100 kernel launches a step for `base`
instead of ~1,000), and AdamW uses torch's fused kernel. On the CPU both are torch's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

@dataclass
class OptimConfig:
    optimizer: str = "muon"  # "muon" (Muon + AdamW) or "adamw" (AdamW only)
    lr: float = 1e-3  # AdamW peak learning rate
    muon_lr: float = 0.02  # Muon peak learning rate ("original" lr scaling, Keller Jordan's default)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 100  # linear warmup (capped at 10% of the run)
    min_lr_ratio: float = 0.1  # cosine decays to this fraction of the peak
    grad_clip: float = 1.0  # global gradient-norm clip; 0 = off


def split_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(muon_params, adamw_params): hidden 2-D matrices inside the encoder blocks vs the rest."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # only the blocks' qkv/proj/fc/out matrices map hidden -> hidden; in_proj, out_proj,
        # meta_proj, time_proj and the embeddings are 2-D too but stay on AdamW
        hidden_matrix = p.ndim == 2 and name.startswith("blocks.")
        (muon if hidden_matrix else adamw).append(p)
    return muon, adamw


class BatchedMuon(torch.optim.Muon):
    """torch.optim.Muon's update, computed for all same-shaped matrices at once.

    Per matrix the maths is torch's (`_single_tensor_muon`): momentum lerp, Nesterov lerp,
    Newton-Schulz in bfloat16 on the wide orientation, decoupled weight decay, "original" lr
    adjustment. Here the momentum steps are foreach ops and the Newton-Schulz products are batched
    matrix products over each shape's stack, so a step costs a few launches per shape, not ~20 per
    matrix. The state (one momentum buffer per matrix) is torch's, so checkpoints load in either.
    Outputs match torch's to bfloat16 rounding (the batched products sum in another order).
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["adjust_lr_fn"] not in (None, "original"):
                raise ValueError("BatchedMuon implements the 'original' lr adjustment only")
            shapes: dict[tuple, list[nn.Parameter]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    shapes.setdefault((tuple(p.shape), p.dtype, p.device), []).append(p)
            for (shape, _, _), params in shapes.items():
                self._update(params, shape, group)
        return loss

    def _update(self, params: list[nn.Parameter], shape: tuple[int, int], group: dict) -> None:
        grads = [p.grad for p in params]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
        mom = group["momentum"]
        torch._foreach_lerp_(bufs, grads, 1 - mom)
        updates = torch._foreach_lerp(grads, bufs, mom) if group["nesterov"] else bufs
        ortho = newton_schulz(torch.stack(updates), group["ns_coefficients"], group["ns_steps"], group["eps"])
        lr = group["lr"]
        torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        rows, cols = shape
        torch._foreach_add_(params, list(ortho.unbind(0)), alpha=-lr * math.sqrt(max(1, rows / cols)))


def newton_schulz(g: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> torch.Tensor:
    """torch's quintic Newton-Schulz orthogonalisation of each matrix of a stack [k, rows, cols],
    in bfloat16, on the wide orientation (rows <= cols)."""
    a, b, c = coefficients
    x = g.bfloat16()
    tall = x.size(1) > x.size(2)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(1, 2), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class MultiOptimizer:
    """Steps several torch optimisers as one; state_dict/load_state_dict for exact resume."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.optimizers for g in o.param_groups]

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> list[dict]:
        return [o.state_dict() for o in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        for o, s in zip(self.optimizers, states, strict=True):
            o.load_state_dict(s)


def lr_factor(step: int, total_steps: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at `step`: linear warmup then cosine to min_ratio."""
    warmup = min(warmup, max(1, total_steps // 10))
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> MultiOptimizer:
    muon_params, adamw_params = split_params(model)
    if cfg.optimizer == "adamw":
        adamw_params, muon_params = muon_params + adamw_params, []
    elif cfg.optimizer != "muon":
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (muon or adamw)")
    # Batched Muon and fused AdamW: the same maths as torch's per-tensor versions with far fewer
    # kernel launches on a GPU, and faster on a CPU too (`benchmarks/pretrain.py --parts`, 2 cores,
    # `small`: 56 against 62 ms a step for Muon, 2.2 against 5.9 ms for AdamW).
    opts: list[torch.optim.Optimizer] = []
    if muon_params:
        opts.append(BatchedMuon(muon_params, lr=cfg.muon_lr, weight_decay=cfg.weight_decay))
    # weight decay only on matrices; norms, biases and the special token vectors are not decayed
    decay = [p for p in adamw_params if p.ndim >= 2]
    no_decay = [p for p in adamw_params if p.ndim < 2]
    opts.append(torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas,
                                  fused=True))
    for o in opts:
        for g in o.param_groups:
            g["peak_lr"] = g["lr"]
    return MultiOptimizer(opts)


def set_lr(opt: MultiOptimizer, step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Set every group's lr for `step` from its peak; returns the multiplier (a pure function of
    the step, so a resumed run needs no scheduler state beyond the step count)."""
    f = lr_factor(step, total_steps, cfg.warmup_steps, cfg.min_lr_ratio)
    for g in opt.param_groups:
        g["lr"] = g["peak_lr"] * f
    return f
