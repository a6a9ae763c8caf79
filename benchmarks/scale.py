"""Scale simulation: synthetic vector stores of 100k, 1M and 5M shots (vectors only, no media).

For each size, in a fresh subprocess (so peak RSS is that size's alone):
  - consolidation of the store's fused vectors into the memory-mapped cache (one-off, seconds),
  - pretraining data-loader throughput (shots/s over shuffled 512-shot windows) and peak RSS,
and, over the 100k store, contextual-embedding throughput (embed_store with `small`).

    python benchmarks/scale.py                      # 100k, 1M, 5M at dim 128 (~15 min, ~6 GB disk)
    python benchmarks/scale.py --sizes 100000 1000000 --dim 128 --root /tmp/mediafm-scale

The vector size is 128, not the real 2688, to keep 5M shots on this box's disk: loader bytes/s
and storage scale linearly with the dimension (see docs/scaling.md), memory stays bounded by the
batch either way.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "support")]  # mediafm_testing (test helpers, not in the wheel)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_gb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e9


def measure_loader(store: str, batches: int, batch: int, window: int) -> dict:
    """Runs in a child process: consolidate, then stream `batches` global batches."""
    import torch

    from mediafm.training.data import build_cache, iter_batches, split_titles

    torch.set_num_threads(1)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    cache = build_cache(store)
    t_build = time.perf_counter() - t0
    rss_build = _rss_mb()
    tr, _ = split_titles(cache.title_ids, 0.05, 0)
    t0 = time.perf_counter()
    shots = n = 0
    for b in iter_batches(cache, tr, window, batch, seed=0, epoch=0, ratio=0.2):
        shots += int(b.pad_mask.sum())
        n += 1
        if n >= batches:
            break
    dt = time.perf_counter() - t0
    return {"shots_total": int(cache.offsets[-1]), "titles": len(cache.title_ids), "build_s": t_build,
            "loader_shots_per_s": shots / dt, "loader_MBps": shots * cache.dim * 4 / dt / 1e6,
            "batches": n, "rss_start_mb": rss0, "rss_after_build_mb": rss_build, "peak_rss_mb": _rss_mb(),
            "cache_gb": _dir_gb(cache.root)}


def measure_embed(store: str, model_dir: str) -> dict:
    import torch

    from mediafm.model import MediaFM, save_pretrained, small
    from mediafm.training.data import build_cache
    from mediafm.training.embed import embed_store

    torch.set_num_threads(2)
    cache = build_cache(store)
    torch.manual_seed(0)
    # the model docs/scaling.md measured: the hidden-state read-out, no distance bias
    save_pretrained(MediaFM(small(cache.dim, 0, objective="cosine", neighbor_weight=0.0, distance_bias=False,
                                  readout="hidden")), model_dir)
    t0 = time.perf_counter()
    res = embed_store(store, model_dir, overwrite=True)
    dt = time.perf_counter() - t0
    return {"shots": res.shots, "embed_shots_per_s": res.shots / dt, "peak_rss_mb": _rss_mb()}


def _child(kind: str, *args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--root", default="/tmp/mediafm-scale")
    ap.add_argument("--batches", type=int, default=300, help="global batches of 16 x 512 shots to stream")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        res = measure_loader(rest[0], int(rest[1]), 16, 512) if kind == "loader" else measure_embed(*rest)
        print(json.dumps(res))
        return 0

    from mediafm_testing.synthetic import vector_store

    root = Path(a.root)
    rows = []
    for n in a.sizes:
        store = root / f"store-{n}"
        if not (store / "titles").exists() or len(list((store / "titles").glob("*.parquet"))) * 2000 < n:
            shutil.rmtree(store, ignore_errors=True)
            t0 = time.perf_counter()
            vector_store(store, n, dim=a.dim, shots_per_title=2000)
            gen = time.perf_counter() - t0
        else:
            gen = float("nan")
        r = _child("loader", store, a.batches)
        r.update(size=n, gen_s=gen, store_gb=_dir_gb(store) - r["cache_gb"])
        rows.append(r)
        print(f"done {n:,} shots: {json.dumps(r)}", file=sys.stderr)

    print(f"\n== pretraining data loader (dim {a.dim}, 16 x 512-shot windows per batch, titles shuffled; "
          "shared 2-core box, noisy)")
    print(f"{'shots':>10}{'titles':>8}{'store GB':>10}{'generate s':>12}{'consolidate s':>15}{'loader shots/s':>16}"
          f"{'MB/s':>8}{'peak RSS MB':>13}{'RSS after build':>17}")
    for r in rows:
        print(f"{r['size']:>10,}{r['titles']:>8}{r['store_gb']:>10.2f}{r['gen_s']:>12.1f}{r['build_s']:>15.1f}"
              f"{r['loader_shots_per_s']:>16,.0f}{r['loader_MBps']:>8.0f}{r['peak_rss_mb']:>13.0f}"
              f"{r['rss_after_build_mb']:>17.0f}")
    if len(rows) > 1:
        print(f"peak RSS ratio largest/smallest: {rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f} "
              f"for {rows[-1]['size'] / rows[0]['size']:.0f}x the shots")

    smallest = root / f"store-{a.sizes[0]}"
    e = _child("embed", smallest, root / "model-small")
    print(f"\n== contextual embedding (embed_store, `small`, CPU 2 threads) over {e['shots']:,} shots: "
          f"{e['embed_shots_per_s']:,.0f} shots/s, peak RSS {e['peak_rss_mb']:.0f} MB")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
