"""Pretraining throughput, memory, and Muon vs AdamW on structured synthetic titles.

    python benchmarks/pretrain.py              # CPU throughput (small) + optimizer comparison (~5 min)
    python benchmarks/pretrain.py --gpu        # + GPU: base at 512 shots, bf16 (eager and compiled)
    python benchmarks/pretrain.py --gpu-only   # what benchmarks/gpu.sh runs

Throughput is the median over timed steps after warmup, in one process; on the shared 2-core dev
box the CPU numbers are noisy. MFU = achieved model FLOPs / the card's dense bf16 peak, with
training FLOPs per token = 6 x matmul parameters + 12 x layers x seq x hidden (PaLM accounting).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mediafm.model.mediafm import PRESETS, MediaFM, flops_per_shot  # noqa: E402
from mediafm.training.optim import OptimConfig, build_optimizer, set_lr  # noqa: E402

FUSED_DIM = 2688  # default encoders: EfficientNet-Lite0 1280 + YAMNet 1024 + MiniLM 384
META_DIM = 384
# dense bf16 peak FLOP/s (no sparsity) by device-name substring
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch(B: int, N: int, device, ratio: float = 0.2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(B, N, FUSED_DIM, generator=g), dim=-1)
    meta = torch.nn.functional.normalize(torch.randn(B, META_DIM, generator=g), dim=-1)
    mask = torch.rand(B, N, generator=g) < ratio
    pad = torch.ones(B, N, dtype=torch.bool)
    return [t.to(device) for t in (x, meta, pad, mask)]


def throughput(preset: str, B: int, N: int, device: str, steps: int, warmup: int, bf16: bool,
               compile_: bool = False, optimizer: str = "muon") -> dict:
    """Median seconds per training step (forward, backward, clip, optimizer) on random data."""
    torch.manual_seed(0)
    model = MediaFM(PRESETS[preset](FUSED_DIM, META_DIM, max_shots=max(N, 2))).to(device)
    opt = build_optimizer(model, OptimConfig(optimizer=optimizer))
    run = torch.compile(model) if compile_ else model
    data = _batch(B, N, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        set_lr(opt, i, 1000, OptimConfig())
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda" and bf16):
            _, loss = run(*data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    shots = B * N
    res = {"preset": preset, "params": model.num_params(), "batch": B, "shots": N, "device": device,
           "compile": compile_, "optimizer": optimizer, "step_s": dt, "shots_per_s": shots / dt,
           "tokens_per_s": B * (N + 2) / dt, "flops_per_shot": flops_per_shot(model.config, N)}
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if k in name), float("nan"))
        res.update(gpu=name, peak_mem_gb=torch.cuda.max_memory_allocated() / 1e9,
                   mfu=res["flops_per_shot"] * res["shots_per_s"] / peak)
    else:
        res["peak_rss_mb"] = _rss_mb()
    return res


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
            cfg = TrainConfig(preset="tiny", max_shots=64, batch_size=16, epochs=steps_epochs, patience=1000,
                              val_fraction=0.2, progress=False, num_threads=threads,
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


def _print_tp(rows: list[dict]) -> None:
    print(f"{'preset':<7}{'dev':<6}{'opt':<6}{'cmp':<5}{'B x N':>10}{'step ms':>10}{'shots/s':>11}{'tokens/s':>11}"
          f"{'MFU':>7}{'peak mem':>12}")
    for r in rows:
        mem = f"{r['peak_mem_gb']:.1f} GB" if "peak_mem_gb" in r else f"{r['peak_rss_mb']:.0f} MB RSS"
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-"
        print(f"{r['preset']:<7}{r['device']:<6}{r['optimizer']:<6}{'yes' if r['compile'] else 'no':<5}"
              f"{str(r['batch']) + ' x ' + str(r['shots']):>10}{1000 * r['step_s']:>10.1f}{r['shots_per_s']:>11,.0f}"
              f"{r['tokens_per_s']:>11,.0f}{mfu:>7}{mem:>12}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", action="store_true", help="also run the GPU measurements")
    ap.add_argument("--gpu-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="1: on the shared 2-core box more threads thrash")
    ap.add_argument("--epochs", type=int, default=40, help="epochs per optimizer-comparison run")
    ap.add_argument("--gpu-batch", type=int, default=32)
    a = ap.parse_args(argv)
    if not a.gpu_only:
        torch.set_num_threads(a.threads)
        print(f"== CPU training throughput ({a.threads} threads, fused dim {FUSED_DIM}; shared box, noisy)")
        rows = [throughput("tiny", 8, 128, "cpu", 5, 2, False),
                throughput("small", 8, 128, "cpu", 5, 2, False),
                throughput("small", 8, 128, "cpu", 5, 2, False, optimizer="adamw"),
                throughput("small", 2, 512, "cpu", 3, 1, False)]
        _print_tp(rows)
        print(f"\n== Muon vs AdamW: tiny, 80 structured synthetic titles, {a.epochs} epochs, same schedule")
        print(f"{'optimizer':<10}{'lr':>12}{'steps':>7}{'best val':>10}{'cos model':>11}{'cos best base':>15}"
              f"{'wall s':>8}  val loss curve")
        for r in optimizer_comparison(a.epochs, a.threads):
            print(f"{r['optimizer']:<10}{str(r['lr']):>12}{r['steps']:>7}{r['val_loss']:>10.4f}{r['cos_model']:>11.4f}"
                  f"{r['cos_best_baseline']:>15.4f}{r['wall_s']:>8.1f}  {r['val_curve']}")
    if a.gpu or a.gpu_only:
        if not torch.cuda.is_available():
            print("\n(no CUDA device: GPU measurements skipped)")
            return 0
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"\n== GPU: {torch.cuda.get_device_name()}, base at 512 shots, bf16 autocast")
        B = a.gpu_batch
        runs = [dict(B=B), dict(B=B, optimizer="adamw"), dict(B=B, compile_=True), dict(B=2 * B, compile_=True)]
        rows = []
        for r in runs:
            try:
                rows.append(throughput("base", r.pop("B"), 512, "cuda", 10, 5, True, **r))
            except Exception as exc:  # e.g. OOM at 2x batch or a compile failure: report, keep the rest
                print(f"  run {r} failed: {type(exc).__name__}: {str(exc)[:200]}")
            torch.cuda.empty_cache()
        _print_tp(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
