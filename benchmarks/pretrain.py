"""Pretraining throughput, MFU, memory, a profile of the step, Muon vs AdamW, and what pretraining learns.

    python benchmarks/pretrain.py               # CPU: masked-shot baselines, throughput, optimizers (~5 min)
    python benchmarks/pretrain.py --learning-only   # only the masked-shot baselines (~15 s)
    python benchmarks/pretrain.py --gpu-only    # GPU: base at 512 shots, bf16 (what benchmarks/gpu.sh runs)
    python benchmarks/pretrain.py --gpu-only --device cpu --preset tiny --shots 64 --batch 4 \\
        --titles 12 --warmup 1 --steps 2        # the same code paths, small, on a CPU

The masked-shot table: `tiny` pretrained for 40 epochs (200 steps) on 60 structured synthetic titles
(`mediafm_testing.synthetic.structured_store`, seed 1; scenes of shot / reverse-shot alternation,
so a masked shot is predicted by the shots two steps away), then the mean cosine to the true vector
on masked shots of the held-out titles: the model against copying the previous shot, the mean of
the two neighbours and the title mean (`mediafm.training.baselines`). tests/test_training_learning.py
asserts on the same run; this prints it.

The GPU part runs the data path and step of `mediafm pretrain` (`iter_batches` in a prefetch thread
-> `train_step`; the model compiled where the row says so) on a synthetic cache of random unit
vectors: `--titles` titles of 600 shots (every 512-shot window full), or with `--mixed` 100 to
1,000 shots (padded batches). TrainConfig's defaults otherwise: the `both` objective with the
neighbour loss, Muon + AdamW, bf16 autocast. Time is wall time over `--steps` steps after
`--warmup` (which includes compiling), the device synchronised only at the two ends, as in
training. MFU = model FLOPs per second / the card's dense bf16 peak, with model FLOPs per window
from `mediafm.model.train_flops`: the matrix products the step runs (PaLM's count: 6 x the blocks'
parameters x tokens + 12 x layers x hidden x tokens^2, tokens = real shots + [CLS] + [GLOBAL], plus
the shot projections on the rows they run on; padding, losses and optimiser not counted).
`--mfu-only` runs the CPU table against the machine's own float32 and bfloat16 matmul peaks.
`--profile` adds a torch.profiler pass over a few steps of the first compiled row: GPU time by
kernel kind, how busy the GPU was, the top kernels and the step's named ranges.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "support")]  # mediafm_testing (test helpers, not in the wheel)

from mediafm.model.transformer import (  # noqa: E402
    N_SPECIAL, PRESETS, MediaFM, ModelConfig, block_train_flops, infer_flops, train_flops, window_plan)
from mediafm.training.optim import MultiOptimizer, OptimConfig, build_optimizer, set_lr  # noqa: E402

FUSED_DIM = 2688  # default encoders: EfficientNet-Lite0 1280 + YAMNet 1024 + MiniLM 384
META_DIM = 384
# Dense bf16 peak FLOP/s (no sparsity), by device-name substring, from the vendors' datasheets.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_flops(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- CPU (model only)
def _batch(B: int, N: int, device, ratio: float = 0.2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(B, N, FUSED_DIM, generator=g), dim=-1)
    meta = torch.nn.functional.normalize(torch.randn(B, META_DIM, generator=g), dim=-1)
    mask = torch.rand(B, N, generator=g) < ratio
    pad = torch.ones(B, N, dtype=torch.bool)
    return [t.to(device) for t in (x, meta, pad, mask)]


def cpu_throughput(preset: str, B: int, N: int, steps: int, warmup: int, optimizer: str = "muon") -> dict:
    """Median seconds per training step (forward, backward, clip, optimizer) on one random batch."""
    torch.manual_seed(0)
    # The model the CPU table in docs/model.md was measured with: cosine loss, no neighbour heads,
    # no distance bias (the GPU rows below train the product's defaults).
    model = MediaFM(PRESETS[preset](FUSED_DIM, META_DIM, max_shots=max(N, 2), objective="cosine", neighbor_weight=0.0,
                                    distance_bias=False, readout="hidden"))
    opt = build_optimizer(model, OptimConfig(optimizer=optimizer))
    data = _batch(B, N, "cpu")
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        set_lr(opt, i, 1000, OptimConfig())
        _, loss = model(*data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    return {"run": f"{preset}, {optimizer}", "preset": preset, "device": "cpu", "batch": B, "shots": N,
            "step_s": dt, "shots_per_s": B * N / dt, "tokens_per_s": B * (N + 2) / dt, "mfu": None,
            "peak_mem": f"{_rss_mb():.0f} MB RSS"}


def masked_shot_baselines(threads: int) -> str:
    """The model's masked-shot cosine on held-out titles against the context-free baselines."""
    from mediafm.model import load_pretrained
    from mediafm.training.baselines import masked_prediction_report
    from mediafm.training.data import build_cache, split_titles
    from mediafm.training.pretrain import TrainConfig, pretrain
    from mediafm_testing.synthetic import SyntheticConfig, structured_store

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        store, model = Path(tmp) / "store", Path(tmp) / "model"
        structured_store(store, SyntheticConfig(n_titles=60, seed=1))
        cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=64), batch_size=16, epochs=40, patience=100,
                          val_fraction=0.2, progress=False, num_threads=threads, optim=OptimConfig(warmup_steps=20))
        t0 = time.perf_counter()
        res = pretrain(store, model, cfg)
        wall = time.perf_counter() - t0
        cache = build_cache(store)
        _, val = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
        rep = masked_prediction_report(load_pretrained(model), cache, val, cfg.model.max_shots, cfg.mask_ratio,
                                       cfg.seed)
    return (f"held-out titles: {len(val)}, steps: {res.steps}, best val loss {res.best_val_loss:.4f}, "
            f"{wall:.0f} s\n{rep.table()}")


def optimizer_comparison(steps_epochs: int, threads: int) -> list[dict]:
    """Same data, model, steps and schedule; only the optimizer (and its lr) changes."""
    from mediafm.model import load_pretrained
    from mediafm.training.baselines import masked_prediction_report
    from mediafm.training.data import build_cache, split_titles
    from mediafm.training.pretrain import TrainConfig, pretrain
    from mediafm_testing.synthetic import SyntheticConfig, structured_store

    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        structured_store(Path(tmp) / "s", SyntheticConfig(n_titles=80, seed=7))
        cache = build_cache(Path(tmp) / "s")
        runs = [("muon", OptimConfig(optimizer="muon", lr=1e-3, muon_lr=0.02)),
                ("adamw", OptimConfig(optimizer="adamw", lr=1e-3)),
                ("adamw", OptimConfig(optimizer="adamw", lr=3e-3)),
                ("adamw", OptimConfig(optimizer="adamw", lr=1e-2))]
        for name, oc in runs:
            cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=64), batch_size=16, epochs=steps_epochs,
                              patience=1000, val_fraction=0.2, progress=False, num_threads=threads,
                              optim=dataclasses.replace(oc, warmup_steps=20))
            out = Path(tmp) / f"m-{name}-{oc.lr}"
            t0 = time.perf_counter()
            res = pretrain(Path(tmp) / "s", out, cfg)
            wall = time.perf_counter() - t0
            _, val = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
            rep = masked_prediction_report(load_pretrained(out), cache, val, 64, 0.2, cfg.seed)
            curve = [round(h["val_loss"], 3) for h in res.history][:: max(1, len(res.history) // 5)]
            rows.append({"optimizer": name, "lr": oc.lr if name == "adamw" else f"{oc.muon_lr}/{oc.lr}",
                         "steps": res.steps, "val_loss": res.best_val_loss, "cos_model": rep.model,
                         "cos_best_baseline": max(rep.previous, rep.neighbours, rep.title_mean),
                         "wall_s": wall, "val_curve": curve})
    return rows


# ----------------------------------------------------------------------------- GPU (the training data path)
def synthetic_cache(root: Path, lengths: list[int], dim: int = FUSED_DIM, meta_dim: int = META_DIM, seed: int = 0,
                    dtype: str = "float32"):
    """A consolidated shot cache (training/data.py's layout) of random unit vectors, written
    directly: the store and its Parquet files are not what this benchmark measures. The same
    vectors for either dtype (bfloat16: rounded, as `build_cache` stores them)."""
    from mediafm.store.atomic import write_json_atomic
    from mediafm.training.data import CACHE_FORMAT, bfloat16_bits, open_cache

    root.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rng = np.random.default_rng(seed)
    fused = np.lib.format.open_memmap(root / "fused.npy", mode="w+", dtype=np.uint16 if dtype == "bfloat16" else np.float32,
                                      shape=(int(offsets[-1]), dim))
    for a in range(0, len(fused), 1 << 15):
        x = rng.standard_normal((min(1 << 15, len(fused) - a), dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        fused[a:a + len(x)] = bfloat16_bits(x) if dtype == "bfloat16" else x
    fused.flush()
    del fused
    times = np.zeros((int(offsets[-1]), 2), np.float32)
    for i, n in enumerate(lengths):
        times[offsets[i]:offsets[i + 1], 0] = 4.0 * np.arange(n)
        times[offsets[i]:offsets[i + 1], 1] = 4.0
    np.save(root / "times.npy", times)
    np.save(root / "offsets.npy", offsets)
    meta = rng.standard_normal((len(lengths), meta_dim), dtype=np.float32)
    np.save(root / "meta.npy", meta / np.linalg.norm(meta, axis=1, keepdims=True))
    write_json_atomic({"format": CACHE_FORMAT, "title_ids": [f"t{i:05d}" for i in range(len(lengths))],
                       "encoders": {}, "dtype": dtype}, root / "index.json")
    return open_cache(root)


class Trainer:
    """One model (compiled or not) trained with `train_step` on batches from `iter_batches`."""

    def __init__(self, cfg, cache, compiled: bool):
        from mediafm.training.pretrain import build_model

        self.cfg, self.cache = cfg, cache
        self.device = torch.device(cfg.device)
        self.model = build_model(cfg, cache.dim, cache.meta_dim).to(self.device)
        self.run_model = torch.compile(self.model) if compiled else self.model  # as `mediafm pretrain --compile`
        self.step = 0

    def batches(self, cfg, device_cache):
        from mediafm.prefetch import prefetch
        from mediafm.training.data import iter_batches

        titles = list(range(len(self.cache.title_ids)))
        pin = self.device.type == "cuda" and device_cache is None

        def forever():
            for epoch in itertools.count():
                yield from iter_batches(self.cache, titles, cfg.model.max_shots, cfg.batch_size, cfg.seed, epoch,
                                        cfg.mask, device_cache=device_cache, pin=pin, use_meta=cfg.use_meta)

        return prefetch(forever(), cfg.prefetch if cfg.prefetch >= 0 else 2 * (self.device.type == "cuda"))

    def measure(self, cfg, optimizer, device_cache, warmup: int, steps: int, profile_steps: int = 0) -> dict:
        from mediafm.training.pretrain import train_step

        dev = str(self.device)
        it = self.batches(cfg, device_cache)
        loss = None
        for _ in range(warmup):
            loss = train_step(self.run_model, optimizer, next(it), cfg, self.step, 10**6, 1, self.device)
            self.step += 1
        _sync(dev)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        flops = shots = windows = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = next(it)
            loss = train_step(self.run_model, optimizer, batch, cfg, self.step, 10**6, 1, self.device)
            self.step += 1
            flops += sum(train_flops(self.model.config, n, cfg.mask_ratio, len(batch.lengths)) for n in batch.lengths)
            shots += batch.real
            windows += len(batch.lengths)
            padded = max(batch.lengths) * len(batch.lengths)
        _sync(dev)
        dt = time.perf_counter() - t0
        out = {"step_s": dt / steps, "shots_per_s": shots / dt, "tokens_per_s": (shots + 2 * windows) / dt,
               "model_tflops": flops / dt / 1e12, "padding": 1 - shots / max(1, steps * padded),
               "loss": float(loss)}
        peak = peak_flops(dev)
        out["mfu"] = flops / dt / peak if peak else None
        out["peak_mem"] = (f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if self.device.type == "cuda"
                           else f"{_rss_mb():.0f} MB RSS")
        if profile_steps:
            out["profile"] = profile(lambda: train_step(self.run_model, optimizer, next(it), cfg, self.step, 10**6, 1,
                                                        self.device), profile_steps, dev)
        return out


def torch_muon_optimizer(model, oc: OptimConfig) -> MultiOptimizer:
    """`build_optimizer`'s groups with torch's per-matrix Muon, for comparison with BatchedMuon."""
    opt = build_optimizer(model, oc)
    muon = opt.optimizers[0]
    ref = torch.optim.Muon(muon.param_groups[0]["params"], lr=oc.muon_lr, weight_decay=oc.weight_decay)
    for g in ref.param_groups:
        g["peak_lr"] = g["lr"]
    return MultiOptimizer([ref, *opt.optimizers[1:]])


KINDS = [("attention", r"flash|fmha|attention|sdpa"), ("matrix products", r"gemm|cutlass|xmma|nvjet|cublas|sm90|wgmma"),
         ("copies and fills", r"memcpy|memset|copy_kernel|fill"), ("other (fused elementwise, norms, reductions)", r".")]


def profile(step, steps: int, device: str) -> dict:
    """torch.profiler over `steps` steps: GPU kernel time by kind, busy share, top kernels, ranges."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    step()  # the profiler's own start-up stays out of the window
    _sync(device)
    with torch_profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        wall = time.perf_counter() - t0
    kernels: dict[str, float] = {}
    for e in prof.events():
        if cuda and e.device_type == torch.autograd.DeviceType.CUDA:
            kernels[e.name] = kernels.get(e.name, 0.0) + e.time_range.elapsed_us() / 1e3
    by_kind = dict.fromkeys((k for k, _ in KINDS), 0.0)
    for name, ms in kernels.items():
        kind = next(k for k, pat in KINDS if re.search(pat, name, re.IGNORECASE))
        by_kind[kind] += ms
    busy = sum(kernels.values())
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    avgs = prof.key_averages()
    ranges = {e.key: {"cpu_ms": e.cpu_time_total / 1e3 / steps,
                      "device_ms": getattr(e, "device_time_total", 0.0) / 1e3 / steps}
              for e in avgs if e.key.startswith("mediafm.")}
    return {"steps": steps, "wall_ms_per_step": 1e3 * wall / steps, "gpu_busy_ms_per_step": busy / steps,
            "gpu_busy_share": busy / (1e3 * wall) if cuda else None,
            "kernel_ms_per_step": {k: v / steps for k, v in by_kind.items()},
            "top_kernels": sorted(((n, ms / steps) for n, ms in kernels.items()), key=lambda x: -x[1])[:12],
            "ranges": ranges, "table": avgs.table(sort_by=sort, row_limit=15, max_name_column_width=70)}


def gpu_rows(a) -> tuple[list[dict], dict | None]:
    """The GPU table: one model per configuration that needs its own compile, several optimiser
    and data-path variants on the same compiled model."""
    from mediafm.training.data import DeviceCache
    from mediafm.training.pretrain import TrainConfig

    device = a.device
    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # as `mediafm pretrain` does on CUDA
    rng = np.random.default_rng(0)
    lengths = (rng.integers(100, 1001, a.titles).tolist() if a.mixed else [600] * a.titles)
    tmp = tempfile.TemporaryDirectory()
    t0 = time.perf_counter()
    cache = synthetic_cache(Path(tmp.name) / "cache", lengths)
    print(f"synthetic cache: {len(lengths)} titles, {sum(lengths):,} shots x {FUSED_DIM} "
          f"({cache.fused.nbytes / 2**30:.2f} GiB) in {time.perf_counter() - t0:.1f} s", flush=True)
    base = TrainConfig(preset=a.preset, model=ModelConfig(max_shots=a.shots), batch_size=a.batch, device=device,
                       bf16=True, progress=False)
    dcache = DeviceCache(cache, device) if (not cuda or DeviceCache.fits(cache, device)) else None
    rows, prof = [], None
    print(_header(), flush=True)

    def row(label: str, trainer: Trainer, cfg, optimizer=None, host: bool = False, profile_steps: int = 0):
        nonlocal prof
        try:
            opt = optimizer or build_optimizer(trainer.model, cfg.optim)
            r = trainer.measure(cfg, opt, None if host else dcache, a.warmup, a.steps, profile_steps)
        except Exception as exc:  # an OOM or a compile failure: report it, keep the other rows
            print(f"  {label}: FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            return
        if "profile" in r:
            prof = r.pop("profile")
        r.update(run=label, preset=cfg.preset, device=device, batch=cfg.batch_size, shots=cfg.model.max_shots)
        rows.append(r)
        print(_line(r), flush=True)
        if cuda:
            torch.cuda.empty_cache()

    compiled = Trainer(base, cache, compiled=True)
    row("compiled (mediafm pretrain --compile)", compiled, base, profile_steps=a.profile)
    row("compiled, AdamW only", compiled, dataclasses.replace(base, optim=OptimConfig(optimizer="adamw")))
    row("compiled, torch's per-matrix Muon", compiled, base, optimizer=torch_muon_optimizer(compiled.model, base.optim))
    row("compiled, host batches (pinned copy per step)", compiled, base, host=True)
    del compiled
    row("eager", Trainer(base, cache, compiled=False), base)
    double = dataclasses.replace(base, batch_size=2 * a.batch)
    row("compiled, 2x batch", Trainer(double, cache, compiled=True), double)
    if a.all_rows:  # a model of its own, compiled again: left out of gpu.sh's time budget
        cosine = base.override(objective="cosine", neighbor_weight=0.0)
        row("compiled, cosine loss only (no InfoNCE)", Trainer(cosine, cache, compiled=True), cosine)
    tmp.cleanup()
    return rows, prof


def _header() -> str:
    return (f"{'run':<48}{'B x N':>10}{'step ms':>9}{'shots/s':>11}{'tokens/s':>11}{'TFLOP/s':>9}{'MFU':>7}"
            f"{'pad':>6}{'peak mem':>13}")


def _line(r: dict) -> str:
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
    tf = f"{r['model_tflops']:.1f}" if "model_tflops" in r else "-"
    pad = f"{100 * r['padding']:.0f}%" if "padding" in r else "-"
    return (f"{r['run']:<48}{str(r['batch']) + ' x ' + str(r['shots']):>10}{1000 * r['step_s']:>9.1f}"
            f"{r['shots_per_s']:>11,.0f}{r['tokens_per_s']:>11,.0f}{tf:>9}{mfu:>7}{pad:>6}{r['peak_mem']:>13}")


def print_profile(p: dict) -> None:
    print(f"\n== profile: {p['steps']} steps of the first row; wall {p['wall_ms_per_step']:.1f} ms/step")
    if p["gpu_busy_share"] is not None:
        print(f"GPU kernels {p['gpu_busy_ms_per_step']:.1f} ms/step = {100 * p['gpu_busy_share']:.0f}% of the wall "
              f"time (the rest: the GPU waits for the host)")
        for kind, ms in p["kernel_ms_per_step"].items():
            print(f"  {kind:<46}{ms:>8.2f} ms/step")
        print("top kernels (ms/step):")
        for name, ms in p["top_kernels"]:
            print(f"  {ms:>8.2f}  {name[:110]}")
    for name, r in sorted(p["ranges"].items()):
        print(f"range {name:<28} host {r['cpu_ms']:>8.2f} ms/step   device {r['device_ms']:>8.2f} ms/step")
    print(p["table"])


# ----------------------------------------------------------------------------- CPU: against the machine's own peak
MFU_TARGET = 0.5  # default `mediafm pretrain` of `small`: model FLOP/s at least this share of the peak of its dtype


def matmul_peak(dtype: torch.dtype, n: int = 3072, repeats: int = 7) -> float:
    """FLOP/s of a large square `torch.matmul` in `dtype` with torch's current threads (median)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)


def long_form_lengths(titles: int, seed: int = 0) -> list[int]:
    """Shots per title like the long-form catalog's (150-600: many titles span two windows of 512)."""
    return [int(n) for n in np.random.default_rng(seed).integers(150, 601, titles)]


def cpu_mfu_rows(titles: int, warmup: int, steps: int, store: Path | None = None) -> list[dict]:
    """`mediafm pretrain`'s step on the CPU (TrainConfig defaults: `small`, the `both` objective with
    the neighbour loss, Muon + AdamW, auto batch of 16 windows, torch's own thread count, bf16
    autocast where the CPU multiplies bf16 natively) over long-form-like windows, timed as in
    training: batches from `iter_batches` in the prefetch thread, `train_step`. Rows, each change
    switched off in turn: the default; in bf16 with each product at the batch's own sizes instead of
    `SHAPE_BUCKETS` (oneDNN compiles kernels for each new shape); in bf16 with torch's fused attention kernel instead of
    `window_attention`'s written-out form; in float32 (`--no-bf16`); then, in float32, attention over the
    padded batch (each window's padding scored) instead of window by window; without running the
    blocks on real tokens only (padding through every product); and also predicting every shot from
    every head (the step before all of these). Model FLOPs count what the default runs, so the rows'
    GFLOP/s compare their speed on the same work; each row's dtype names the peak it is a share of.
    With `store`, the batches are that store's encoded titles (its training cache) instead."""
    import mediafm.model.transformer as tr
    from mediafm.devices import cpu_bf16_native
    from mediafm.training.optim import build_optimizer as build
    from mediafm.training.pretrain import AUTO_BATCH, TrainConfig

    from mediafm.training.pretrain import cache_dtype

    rows = []
    native = cpu_bf16_native()
    with tempfile.TemporaryDirectory() as tmp:
        caches = {}

        def cache_for(dtype: str):  # each row trains from the cache `mediafm pretrain` would read
            if dtype not in caches:
                if store is not None:
                    from mediafm.training.data import build_cache

                    caches[dtype] = build_cache(store, dtype=dtype)
                else:
                    caches[dtype] = synthetic_cache(Path(tmp) / f"cache-{dtype}", long_form_lengths(titles), dtype=dtype)
            return caches[dtype]

        for name, bf16, pack, by_window, predict_all in (
                ("default", True, True, True, False), ("bfloat16, each batch's own sizes", True, True, True, False),
                ("bfloat16, fused attention kernel", True, True, True, False),
                ("float32", False, True, True, False),
                ("float32, attention over padded windows", False, True, False, False),
                ("float32, padding through every product", False, False, False, False),
                ("... and every row through every head", False, False, False, True)):
            cfg = TrainConfig(device="cpu", batch_size=AUTO_BATCH, progress=False, bf16=bf16)
            trainer = Trainer(cfg, cache_for(cache_dtype(cfg, torch.device("cpu"))), compiled=False)
            if predict_all:
                plain = trainer.model.forward
                trainer.model.forward = lambda *a, predict_all=True, **k: plain(*a, predict_all=True, **k)
            tr.PACK_ON_CPU, tr.ATTEND_BY_WINDOW = pack, by_window
            tr.WRITTEN_OUT_BF16_ATTENTION = "fused attention kernel" not in name
            tr.SHAPE_BUCKETS = "own sizes" not in name
            dtype = "bfloat16" if bf16 and native else "float32"
            try:
                torch.manual_seed(0)
                opt = build(trainer.model, cfg.optim)
                # The default row (the target's) in DEFAULT_ROUNDS rounds, the steps of each round
                # following the last; each row's share is of the peak measured just before and after it
                rounds = [_bracketed(lambda: trainer.measure(cfg, opt, None, warmup if r == 0 else 0, steps), dtype)
                          for r in range(DEFAULT_ROUNDS if name == "default" else 1)]
            finally:
                tr.PACK_ON_CPU = tr.ATTEND_BY_WINDOW = tr.WRITTEN_OUT_BF16_ATTENTION = tr.SHAPE_BUCKETS = True
            shares = [r["model_tflops"] * 1e12 / r["peak"] for r in rounds]
            out = rounds[int(np.argsort(shares)[len(shares) // 2])]  # the round of the median share
            rows.append({"run": name, "dtype": dtype, "round_shares": shares, **out})
    return rows


DEFAULT_ROUNDS = 3  # measurements of the default row, each between two peak measurements


def _bracketed(measure: Callable[[], dict], dtype: str) -> dict:
    """`measure()`'s row with "peak": the higher of the matmul peaks in `dtype` measured just before
    and just after it. This host's speed drifts by 10% or more over minutes (a shared machine):
    a row measured in a slow minute is then compared with the peak of that minute, and the higher
    of the two peaks keeps a peak measured in a slowed moment from flattering it."""
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    before = matmul_peak(torch_dtype)
    out = measure()
    return {**out, "peak": max(before, matmul_peak(torch_dtype))}


def batch_window_tokens(titles: int, batch: int = 16, seed: int = 0) -> list[int]:
    """Tokens of the first `batch` training windows (`title_windows`, 512 shots, plus [CLS] and
    [GLOBAL]) of long-form-like titles: one default batch's shapes."""
    from mediafm.training.data import title_windows

    tokens = [w.length + N_SPECIAL for i, n in enumerate(long_form_lengths(titles, seed))
              for w in title_windows(i, n, 512)]
    return tokens[:batch]


def block_products_ceiling(tokens: list[int], cfg: ModelConfig, repeats: int = 5) -> dict:
    """The blocks' matrix products of one training step and nothing else: for each layer the four
    linear layers' forward and two backward products over every token row, and each window's
    attention products (two forward, four backward), in bfloat16 at the sizes the step runs them at
    under `SHAPE_BUCKETS`. Its FLOP/s, as a share of the peak, is what the step would reach if every
    other part of it (norms, softmax, GELU, casts, the losses, the optimiser, Python) took no time:
    a ceiling for this model's shapes on this machine. FLOPs: `block_train_flops` (real tokens only)."""
    import mediafm.model.transformer as tr

    h, L, heads, mid = cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.mlp_ratio * cfg.hidden
    d, bf = h // heads, torch.bfloat16
    T = tr.round_up(sum(tokens), tr.ROW_BUCKET)
    x = {k: torch.randn(T, k, dtype=bf) for k in (h, 3 * h, mid)}
    w = {(i, o): torch.randn(i, o, dtype=bf) * i ** -0.5 for i, o in ((h, 3 * h), (h, h), (h, mid), (mid, h))}
    win = {m: [torch.randn(heads, m, d, dtype=bf) for _ in range(3)] + [torch.randn(heads, m, m, dtype=bf)]
           for m in {tr.round_up(n, tr.WINDOW_BUCKET) for n in tokens}}

    def step() -> None:
        for _ in range(L):
            for (i, o), weight in w.items():
                x[i] @ weight  # forward
                x[o] @ weight.T  # gradient of the input
                x[i].T @ x[o]  # gradient of the weight
            for n in tokens:
                q, k, v, p = win[tr.round_up(n, tr.WINDOW_BUCKET)]
                torch.bmm(q, k.transpose(1, 2)), torch.bmm(p, v)  # scores, outputs
                torch.bmm(q, v.transpose(1, 2)), torch.bmm(p.transpose(1, 2), q)  # d probs, d values
                torch.bmm(p, k), torch.bmm(p.transpose(1, 2), q)  # d queries, d keys

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    flops = sum(block_train_flops(cfg, n) for n in tokens)
    t = statistics.median(times)
    return {"seconds": t, "gflops": flops / t / 1e9, "tokens": sum(tokens)}


def cpu_embed_row(titles: int) -> dict:
    """`embed_title` (what `mediafm embed` runs per title) over long-form-like titles: windows of
    512 shots every 256, the default read-out."""
    from mediafm.training.pretrain import TrainConfig, build_model

    model = build_model(TrainConfig(), FUSED_DIM, META_DIM).eval()
    rng = np.random.default_rng(1)
    flops = shots = 0.0
    t0 = time.perf_counter()
    for n in long_form_lengths(titles, seed=1):
        x = rng.standard_normal((n, FUSED_DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        model.embed_title(x, rng.standard_normal(META_DIM).astype(np.float32))
        starts, _ = window_plan(n, 512, 256)
        flops += sum(infer_flops(model.config, min(512, n)) for _ in starts)
        shots += n
    dt = time.perf_counter() - t0
    return {"run": "embed (inference)", "shots_per_s": shots / dt, "model_gflops": flops / dt / 1e9,
            "peak_mem": f"{_rss_mb():.0f} MB RSS"}


def cpu_encoder_row(images: int = 96) -> dict:
    """EfficientNet-Lite0 (the default video encoder, on onnxruntime) on 224x224 frames; its FLOPs
    per image counted by torch's FlopCounterMode on the same network in torch."""
    from torch.utils.flop_counter import FlopCounterMode

    from mediafm.encoders import get_encoder
    from mediafm.encoders.video_effnet import _torch_network

    enc = get_encoder("video")
    frames = np.random.default_rng(2).integers(0, 255, (images, 224, 224, 3), dtype=np.uint8)
    enc.encode(frames[:8])
    t0 = time.perf_counter()
    for i in range(0, images, 32):
        enc.encode(frames[i:i + 32])
    dt = time.perf_counter() - t0
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        _torch_network()(torch.zeros(1, 224, 224, 3, dtype=torch.uint8))
    per_image = counter.get_total_flops()
    return {"run": "video encoder (EfficientNet-Lite0)", "images_per_s": images / dt,
            "model_gflops": per_image * images / dt / 1e9, "gflop_per_image": per_image / 1e9}


def cpu_mfu(titles: int, warmup: int, steps: int, store: Path | None = None) -> bool:
    """Print the machine's matmul peaks and each workload's model FLOP/s as a share of the peak of
    the dtype it multiplies in; True when the default pretraining step reaches MFU_TARGET of it.

    Each row is a share of the peak of its dtype measured just before and after it (the higher of
    the two: a shared host slowed for a moment measures a low peak, which would flatter the row);
    the default row is measured in DEFAULT_ROUNDS rounds and reported at the round of the median
    share. The peaks before and after the whole table are printed too, and the embedding and
    encoder rows are shares of the higher of those."""
    before = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
    print(f"torch threads {torch.get_num_threads()}; matmul peak before the rows (3072^2, median of 7): float32 "
          f"{before['float32'] / 1e9:.0f} GFLOP/s, bfloat16 {before['bfloat16'] / 1e9:.0f} GFLOP/s", flush=True)
    rows = cpu_mfu_rows(titles, warmup, steps, store)
    e = cpu_embed_row(max(4, titles // 4))
    v = cpu_encoder_row()
    after = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
    peaks = {k: max(before[k], after[k]) for k in before}
    fp32 = peaks["float32"]
    print(f"matmul peak after the rows: float32 {after['float32'] / 1e9:.0f} GFLOP/s, bfloat16 "
          f"{after['bfloat16'] / 1e9:.0f} GFLOP/s; each row's share below is of the peak measured around it")
    print(f"{'run':<40}{'dtype':>9}{'step s':>8}{'steps/s':>9}{'shots/s':>9}{'GFLOP/s':>9}{'peak':>7}{'of peak':>9}"
          f"{'padding':>9}  memory")
    ok, default = False, None
    for r in rows:
        g = r["model_tflops"] * 1e3
        peak = r.get("peak", peaks[r["dtype"]])
        share = g * 1e9 / peak
        print(f"{r['run']:<40}{r['dtype']:>9}{r['step_s']:>8.2f}{1 / r['step_s']:>9.3f}{r['shots_per_s']:>9.0f}"
              f"{g:>9.1f}{peak / 1e9:>7.0f}{share:>9.1%}{r['padding']:>9.1%}  {r['peak_mem']}", flush=True)
        if r["run"] == "default":
            ok, default = share >= MFU_TARGET, r
    print(f"{e['run']:<40}{'float32':>9}{'':>8}{'':>9}{e['shots_per_s']:>9.0f}{e['model_gflops']:>9.1f}"
          f"{e['model_gflops'] * 1e9 / fp32:>9.1%}{'':>9}  {e['peak_mem']}", flush=True)
    print(f"{v['run']:<40}  {v['images_per_s']:.1f} images/s x {v['gflop_per_image']:.2f} GFLOP = "
          f"{v['model_gflops']:.1f} GFLOP/s, {v['model_gflops'] * 1e9 / fp32:.1%} of the fp32 peak", flush=True)
    if default["dtype"] == "bfloat16":
        from mediafm.training.pretrain import TrainConfig, build_model

        c = block_products_ceiling(batch_window_tokens(titles), build_model(TrainConfig(), FUSED_DIM, META_DIM).config)
        label = "the blocks' products alone (one batch)"
        print(f"{label:<40}{'bfloat16':>9}{c['seconds']:>8.2f}{'':>18}"
              f"{c['gflops']:>9.1f}{peaks['bfloat16'] / 1e9:>7.0f}{c['gflops'] * 1e9 / peaks['bfloat16']:>9.1%}"
              f"  (a ceiling: every other part of the step taking no time)", flush=True)
    rounds = ", ".join(f"{x:.1%}" for x in default.get("round_shares", ()))
    print(f"default pretraining step ({default['dtype']}): {'at least' if ok else 'below'} {MFU_TARGET:.0%} "
          f"of the {default['dtype']} peak" + (f" (rounds: {rounds}; the median is reported)" if rounds else ""))
    return ok


def alternated_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, the calls alternated round by round (a drifting host then
    slows every form alike); the first round warms up and is not counted."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _float32_softmax_attention(q, k, v, bias):
    """`window_attention`'s earlier bf16 form: bf16 products around float32 scores (a cast, a
    scaling, the bias added) and a float32 softmax cast back to bf16, for comparison."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float().mul_(q.shape[-1] ** -0.5)
    if bias is not None:
        scores = scores.add_(bias)
    return torch.matmul(torch.softmax(scores, -1).to(q.dtype), v)


def attention_timings(repeats: int = 5, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median seconds of one step's attention (forward and backward, 4 layers of `small`: 4 heads
    of 64) over a long-form batch's windows (10 of 514 tokens, 6 of 160-420) with the distance
    bias, per dtype: torch's fused SDPA kernel against `window_attention` (and, in bf16, its earlier
    float32-softmax form), alternated run by run with the same inputs."""
    import torch.nn.functional as F

    from mediafm.model.transformer import distance_bias, window_attention

    lens = [514] * 10 + [300, 420, 200, 160, 380, 250]
    full = distance_bias(512, 4)  # [heads, 514, 514]: [CLS] and [GLOBAL] at distance 0, as encode builds it
    g = torch.Generator().manual_seed(seed)
    out = {}
    for dtype in (torch.bfloat16, torch.float32):
        qkv = [[torch.randn(1, 4, n, 64, generator=g).to(dtype).requires_grad_() for _ in range(3)] for n in lens]
        bias = {n: full[None, :, :n, :n].to(dtype).contiguous() for n in set(lens)}
        def step(fn, qkv=qkv, bias=bias):
            for _ in range(4):
                ys = [fn(q, k, v, bias[n]) for (q, k, v), n in zip(qkv, lens)]
                torch.cat([y.reshape(-1) for y in ys]).float().sum().backward()

        def kernel(q, k, v, b):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=b)

        forms = {"fused SDPA kernel": lambda: step(kernel), "window_attention": lambda: step(window_attention)}
        if dtype == torch.bfloat16:
            forms["float32 softmax"] = lambda: step(_float32_softmax_attention)
        out[str(dtype).removeprefix("torch.")] = alternated_medians(forms, repeats)
    return out


def _sliced_windows(attn, qkv: torch.Tensor, spans: tuple[int, ...]) -> torch.Tensor:
    """SelfAttention._by_window as it was: a slice of the packed rows per window (whose backward
    writes into a zeroed copy of all rows, per window), for comparison with its one split."""
    from mediafm.model.transformer import window_attention

    H, out, start = qkv.shape[-1] // 3, [], 0
    for n in spans:
        q, k, v = qkv[start:start + n].view(1, n, 3, attn.n_heads, H // attn.n_heads).permute(2, 0, 3, 1, 4)
        out.append(window_attention(q, k, v, None)[0].transpose(0, 1).reshape(n, H))
        start += n
    return torch.cat(out)


def packed_window_timings(repeats: int = 7, seed: int = 0) -> dict[str, float]:
    """Median seconds of one step's attention over packed bf16 rows (forward and backward, 4
    layers of `small`, a long-form batch's windows): a slice per window against one split."""
    from mediafm.model.transformer import PRESETS, SelfAttention

    spans = tuple([514] * 10 + [300, 420, 200, 160, 380, 250])
    torch.manual_seed(seed)
    attn = SelfAttention(PRESETS["small"](FUSED_DIM))
    qkv = torch.randn(sum(spans), attn.qkv.out_features, dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn(sum(spans), qkv.shape[1] // 3, dtype=torch.bfloat16)
    def step(fn):
        qkv.grad = None
        for _ in range(4):
            fn().backward(grad)

    return alternated_medians({"slice per window": lambda: step(lambda: _sliced_windows(attn, qkv, spans)),
                               "one split": lambda: step(lambda: attn._by_window(qkv, None, spans))}, repeats)


def _normalized_candidates(flat: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """InfoNCE candidates as they were prepared: a gather, F.normalize, autocast's cast to bf16."""
    import torch.nn.functional as F

    return F.normalize(flat.float()[idx], dim=-1).to(torch.bfloat16)


def _unit_row_objective(rows, target: torch.Tensor, masked: torch.Tensor, real: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """The `both` objective on a linear head's rows (`HeadRows`) as it was computed: the cosine term
    with F.cosine_similarity; InfoNCE against unit-length bf16 candidate rows, through the head's
    weights, the queries' predictions computed through the head again for their lengths."""
    import torch.nn.functional as F

    from mediafm.model.transformer import infonce_rows

    flat = target.reshape(-1, target.shape[-1])
    idx = torch.nonzero(masked.reshape(-1), as_tuple=True)[0]
    msm = (1 - F.cosine_similarity(rows(idx).float(), flat[idx].float(), dim=-1)).sum() / len(idx)
    q_idx, c_idx = infonce_rows(masked, real)
    cand = _normalized_candidates(flat, c_idx)
    x = rows.inputs(q_idx)
    inv = 1 / torch.linalg.vector_norm(rows.proj(x).float(), dim=-1, keepdim=True).clamp_min(1e-12)
    w, b = rows.proj.weight, rows.proj.bias
    raw = torch.addmm(cand @ b.to(cand.dtype), x.to(cand.dtype), (cand @ w.to(cand.dtype)).T)
    logits = raw.float() * inv / temperature
    return msm + F.cross_entropy(logits, torch.arange(len(q_idx)))


def objective_batch(seed: int = 0, windows: int = 16, n: int = 512, hidden: int = 256):
    """A long-form-sized batch for one output head: 16 windows of 512 shots (the last 3 windows
    shorter), 20% masked, bf16 targets as the training cache gives them, the head's inputs and a
    2,688 x 256 head."""
    from mediafm.model.transformer import HeadRows

    g = torch.Generator().manual_seed(seed)
    real = torch.ones(windows, n, dtype=torch.bool)
    real[-3:, 300:] = False
    masked = (torch.rand(windows, n, generator=g) < 0.2) & real
    target = torch.randn(windows, n, FUSED_DIM, generator=g).bfloat16()
    head = torch.nn.Linear(hidden, FUSED_DIM)
    flat = torch.randn(windows * n, hidden, generator=g).requires_grad_()
    return HeadRows(head, flat), target, masked, real


def objective_timings(repeats: int = 9, seed: int = 0) -> dict[str, float]:
    """Median seconds of the `both` objective's cosine and InfoNCE terms, forward and backward, on
    one head of a long-form batch in bf16: as computed before (`_unit_row_objective`) and now."""
    from mediafm.model.transformer import OBJECTIVES

    rows, target, masked, real = objective_batch(seed)

    def step(fn):
        torch.manual_seed(seed)  # both forms sample the same queries and candidates
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = fn(rows, target, masked, real, 0.1)
        loss.backward()
        rows.flat.grad = rows.proj.weight.grad = rows.proj.bias.grad = None

    return alternated_medians({"unit candidate rows": lambda: step(_unit_row_objective),
                               "scaled scores": lambda: step(OBJECTIVES["both"])}, repeats)


def optimizer_timings(repeats: int = 10) -> dict[str, float]:
    """Median seconds of one optimiser step for `small`'s parameters (neighbour heads included):
    torch's Muon and foreach AdamW against BatchedMuon and fused AdamW, as build_optimizer splits them."""
    from mediafm.model.transformer import PRESETS, MediaFM
    from mediafm.training.optim import BatchedMuon, split_params

    torch.manual_seed(0)
    model = MediaFM(PRESETS["small"](FUSED_DIM, META_DIM, neighbor_weight=1.0))
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 0.01
    muon, adamw = split_params(model)
    opts = {"torch Muon": torch.optim.Muon(muon, lr=0.02, weight_decay=0.01),
            "BatchedMuon": BatchedMuon(muon, lr=0.02, weight_decay=0.01),
            "AdamW (foreach)": torch.optim.AdamW(adamw, lr=1e-3, foreach=True),
            "AdamW (fused)": torch.optim.AdamW(adamw, lr=1e-3, fused=True)}
    return alternated_medians({name: opt.step for name, opt in opts.items()}, repeats)


def print_parts() -> None:
    """`--parts`: the step's parts that have a faster form, each timed against the plain one."""
    print(f"== parts of a step, {torch.get_num_threads()} threads, medians")
    print("one step's attention (fwd + bwd, 4 layers, a long-form batch's 16 windows):")
    for dtype, row in attention_timings().items():
        base, ours = row["fused SDPA kernel"], row["window_attention"]
        print(f"  {dtype:<9} fused SDPA kernel {1000 * base:6.0f} ms   window_attention {1000 * ours:6.0f} ms   "
              f"ratio {base / ours:.2f}")
        if "float32 softmax" in row:
            prev = row["float32 softmax"]
            print(f"  {dtype:<9} float32 softmax   {1000 * prev:6.0f} ms   window_attention {1000 * ours:6.0f} ms   "
                  f"ratio {prev / ours:.2f}")
    row = packed_window_timings()
    base, ours = row["slice per window"], row["one split"]
    print(f"  packed rows, bf16: slice per window {1000 * base:6.0f} ms   one split {1000 * ours:6.0f} ms   "
          f"ratio {base / ours:.2f}")
    row = objective_timings()
    base, ours = row["unit candidate rows"], row["scaled scores"]
    print("the `both` objective on one head (fwd + bwd, bf16, 16 windows of 512 shots, 512 queries, "
          "2,048 candidates):")
    print(f"  unit candidate rows {1000 * base:6.1f} ms   scaled scores {1000 * ours:6.1f} ms   "
          f"ratio {base / ours:.2f}")
    row = optimizer_timings()
    print("one optimiser step (`small`, neighbour heads):")
    for base, ours in (("torch Muon", "BatchedMuon"), ("AdamW (foreach)", "AdamW (fused)")):
        print(f"  {base:<16} {1000 * row[base]:6.1f} ms   {ours:<14} {1000 * row[ours]:6.1f} ms   "
              f"ratio {row[base] / row[ours]:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", action="store_true", help="also run the GPU measurements")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU measurements (benchmarks/gpu.sh)")
    ap.add_argument("--device", default="cuda", help="device for the GPU measurements (cpu: check the code paths)")
    ap.add_argument("--threads", type=int, default=1, help="1: on the shared 2-core box more threads thrash")
    ap.add_argument("--epochs", type=int, default=40, help="epochs per optimizer-comparison run")
    ap.add_argument("--preset", default="base")
    ap.add_argument("--shots", type=int, default=512, help="window length (max_shots)")
    ap.add_argument("--batch", "--gpu-batch", type=int, default=32, dest="batch", help="windows per step")
    ap.add_argument("--titles", type=int, default=100, help="synthetic titles (600 shots each: 2 windows)")
    ap.add_argument("--mixed", action="store_true", help="titles of 100-1,000 shots (padded batches)")
    ap.add_argument("--warmup", type=int, default=5, help="steps before timing (includes compiling)")
    ap.add_argument("--steps", type=int, default=15, help="timed steps per row")
    ap.add_argument("--all-rows", action="store_true", help="also the cosine-only objective (one more compile)")
    ap.add_argument("--profile", type=int, default=5, help="profiled steps of the first row (0: none)")
    ap.add_argument("--json", type=Path, help="write the rows and the profile here")
    ap.add_argument("--learning-only", action="store_true", help="only the masked-shot baselines table")
    ap.add_argument("--mfu-only", action="store_true",
                    help="only the CPU table against the machine's matmul peak (exit 1 below the target)")
    ap.add_argument("--mfu-titles", type=int, default=40, help="long-form-like titles for the CPU MFU table")
    ap.add_argument("--store", type=Path, help="with --mfu-only: batches from this store's encoded titles "
                                               "(e.g. the long-form catalog's) instead of synthetic ones")
    ap.add_argument("--parts", "--attention", action="store_true",
                    help="only the timings of the step's parts against their plain forms: attention (torch's "
                         "fused kernel, a slice per window) and the optimisers (torch's Muon, foreach AdamW)")
    a = ap.parse_args(argv)
    if a.parts:
        print_parts()
        return 0
    if a.mfu_only:
        print("== CPU: model FLOP/s against this machine's matmul peak (same threads as `mediafm pretrain`)")
        return 0 if cpu_mfu(a.mfu_titles, 2, 8, a.store) else 1
    if not a.gpu_only:
        print("== Masked-shot prediction on held-out titles: mean cosine to the true vector (tiny, 60 structured "
              f"synthetic titles, {a.threads} threads)")
        print(masked_shot_baselines(a.threads), flush=True)
        if a.learning_only:
            return 0
        print(f"\n== CPU training throughput ({a.threads} threads, fused dim {FUSED_DIM}; shared box, noisy)")
        rows = [cpu_throughput("tiny", 8, 128, 5, 2), cpu_throughput("small", 8, 128, 5, 2),
                cpu_throughput("small", 8, 128, 5, 2, optimizer="adamw"), cpu_throughput("small", 2, 512, 3, 1)]
        print(_header())
        for r in rows:
            print(_line(r))
        print(f"\n== Muon vs AdamW: tiny, 80 structured synthetic titles, {a.epochs} epochs, same schedule")
        print(f"{'optimizer':<10}{'lr':>12}{'steps':>7}{'best val':>10}{'cos model':>11}{'cos best base':>15}"
              f"{'wall s':>8}  val loss curve")
        for r in optimizer_comparison(a.epochs, a.threads):
            print(f"{r['optimizer']:<10}{str(r['lr']):>12}{r['steps']:>7}{r['val_loss']:>10.4f}{r['cos_model']:>11.4f}"
                  f"{r['cos_best_baseline']:>15.4f}{r['wall_s']:>8.1f}  {r['val_curve']}")
    if not (a.gpu or a.gpu_only):
        return 0
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("\n(no CUDA device: GPU measurements not run; --device cpu runs their code paths on the CPU)")
        return 1
    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "CPU"
    peak = peak_flops(a.device)
    print(f"\n== {name} (dense bf16 peak {peak / 1e12:.0f} TFLOP/s), torch {torch.__version__}: {a.preset} at "
          f"{a.shots} shots, bf16 autocast, TrainConfig defaults" if peak else
          f"\n== {name}, torch {torch.__version__}: {a.preset} at {a.shots} shots (no MFU: no known peak)", flush=True)
    torch._logging.set_logs(recompiles=True)  # a recompile inside the timed steps would show here
    rows, prof = gpu_rows(a)
    if prof is not None:
        print_profile(prof)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "peak_flops": peak, "rows": rows,
                                      "profile": {k: v for k, v in (prof or {}).items() if k != "table"}},
                                     indent=1, default=str))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
