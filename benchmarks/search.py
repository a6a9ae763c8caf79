"""Vector search benchmark: exact (IndexFlatIP) vs IVF (what `mediafm index` builds) vs HNSW.

    python benchmarks/search.py [--sizes 10000 100000 1000000] [--dim 384] [--queries 1000]

Vectors: unit-norm, clustered (`mediafm_testing.stores.clustered_vectors`, 100 vectors per
cluster on average, within-cluster noise as large as the centres' scale), dim 384 (the text
encoder's and a typical contextual model's width). Queries: held-out vectors from the same
distribution, one at a time (the explorer's and CLI's pattern), on 1 FAISS thread (builds use 2;
see IndexConfig.query_threads). recall@10 is against exact search. IVF uses the index's own build
path (nlist = 4 sqrt(n), nprobe tuned on stored vectors to recall@10 >= 0.97). Build time includes
training and tuning. Size is the serialized index on disk; peak RSS is the process's after that
row. "cpu" columns are the querying thread's CPU time: the latency without other processes' share
of the core.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # mediafm_testing (test helpers, not in the wheel)

from mediafm.search.index import IndexConfig, build_ivf, recall_at_k, tune_nprobe  # noqa: E402
from mediafm_testing.stores import clustered_vectors  # noqa: E402


def latency(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query wall latencies (s), CPU times of the calling thread (s) and ids, one query per call.

    With one FAISS thread the search runs in the calling thread, so its CPU time is the query's cost
    without the time the OS gave the core to other processes: what an idle machine would see."""
    times, cpu, ids = [], [], []
    import faiss

    faiss.omp_set_num_threads(1)  # as ShotIndex.search does (see IndexConfig.query_threads)
    index.search(queries[:5], k)  # warm-up
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        _, i = index.search(q[None], k)
        times.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        ids.append(i[0])
    faiss.omp_set_num_threads(2)  # builds use both cores
    return np.array(times), np.array(cpu), np.array(ids)


def size_mb(index) -> float:
    import faiss

    with tempfile.NamedTemporaryFile(suffix=".index") as f:
        faiss.write_index(index, f.name)
        return os.path.getsize(f.name) / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--spread", type=float, default=1.0,
                   help="within-cluster noise relative to the centres' scale (1.0: as far apart as spread)")
    p.add_argument("--hnsw-max", type=int, default=100_000, help="skip HNSW above this size (its build is slow)")
    p.add_argument("--isotropic", action="store_true", help="also run unclustered Gaussian noise at the middle size")
    args = p.parse_args(argv)

    import faiss

    faiss.omp_set_num_threads(2)
    config = IndexConfig()
    rows = []
    datasets = [("clustered", n) for n in args.sizes]
    if args.isotropic:
        datasets.append(("isotropic", args.sizes[len(args.sizes) // 2]))
    for kind, n in datasets:
        if kind == "clustered":
            allv = clustered_vectors(n + args.queries, args.dim, n_clusters=max((n + args.queries) // 100, 10),
                                     spread=args.spread, seed=n)
        else:
            rng = np.random.default_rng(n)
            allv = rng.standard_normal((n + args.queries, args.dim), dtype=np.float32)
            allv /= np.linalg.norm(allv, axis=1, keepdims=True)
        rng = np.random.default_rng(0)
        perm = rng.permutation(len(allv))
        x, q = allv[perm[:n]], allv[perm[n:]]
        del allv

        t = time.perf_counter()
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(x)
        build = time.perf_counter() - t
        lat, cpu, exact = latency(flat, q)
        rows.append((kind, n, "exact (Flat)", "-", build, size_mb(flat), lat, cpu, 1.0, peak_rss_mb()))
        print(_fmt(rows[-1]), file=sys.stderr, flush=True)

        t = time.perf_counter()
        ivf = build_ivf(x, config)
        ivf.add(x)
        nprobe, _ = tune_nprobe(ivf, x, config)
        build = time.perf_counter() - t
        ivf.nprobe = nprobe
        lat, cpu, ids = latency(ivf, q)
        rows.append((kind, n, "IVF-Flat", f"nlist={ivf.nlist} nprobe={nprobe}", build, size_mb(ivf), lat, cpu,
                     recall_at_k(ids, exact), peak_rss_mb()))
        print(_fmt(rows[-1]), file=sys.stderr, flush=True)
        del ivf

        if n <= args.hnsw_max:
            t = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 40
            hnsw.add(x)
            build = time.perf_counter() - t
            for ef in (64, 256):
                hnsw.hnsw.efSearch = ef
                lat, cpu, ids = latency(hnsw, q)
                rows.append((kind, n, "HNSW", f"M=32 efC=40 efS={ef}", build, size_mb(hnsw), lat, cpu,
                             recall_at_k(ids, exact), peak_rss_mb()))
                print(_fmt(rows[-1]), file=sys.stderr, flush=True)
            del hnsw
        del flat, x

    print(f"\nsearch benchmark: dim={args.dim}, spread={args.spread}, {args.queries} held-out queries one at a time, k=10, "
          f"FAISS {faiss.__version__}, build on 2 threads, query on 1 (shared, noisy machine)\n")
    print(HEADER)
    for r in rows:
        print(_fmt(r))
    print("\nratios (exact p99 / IVF p99):")
    for kind, n in datasets:
        e = next(r for r in rows if r[:3] == (kind, n, "exact (Flat)"))
        i = next(r for r in rows if r[:3] == (kind, n, "IVF-Flat"))
        print(f"  {kind:<9} {n:>9,}: {np.percentile(e[6], 99) / np.percentile(i[6], 99):6.1f}x faster (wall), "
              f"{np.percentile(e[7], 99) / np.percentile(i[7], 99):6.1f}x (CPU), recall@10 {i[8]:.3f}")
    return 0


HEADER = (f"{'data':<9} {'vectors':>9}  {'index':<12} {'params':<24} {'build s':>8} {'size MB':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'cpu p50':>7} {'cpu p99':>7} {'recall@10':>9} {'peak RSS MB':>11}")


def _fmt(r) -> str:
    kind, n, name, params, build, size, lat, cpu, recall, rss = r
    ms = [np.percentile(a, p) * 1e3 for a in (lat, cpu) for p in (50, 99)]
    return (f"{kind:<9} {n:>9,}  {name:<12} {params:<24} {build:8.1f} {size:8.0f} "
            + " ".join(f"{v:7.2f}" for v in ms) + f" {recall:9.3f} {rss:11.0f}")


if __name__ == "__main__":
    sys.exit(main())
