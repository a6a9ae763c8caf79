"""Explorer under load: latency per endpoint, errors and server memory across repeats.

    python benchmarks/serve_load.py [--titles 100] [--shots 25] [--requests 2000] [--concurrency 16]
                                    [--repeats 3] [--cpus 0,1] [--cache DIR]

Builds (once, cached under --cache) a synthetic store of `--titles` titles with `--shots` shots
each: subtitle-like text and tags, 2,688-d fused vectors (the default encoders' width), one
224x224 frame per shot and a small playable video, written by the real `Store` writers
(`mediafm_testing.stores.add_random_title`), then indexed as `mediafm index` does, and a binary
head fitted on it with `mediafm.apps.fit` (as `mediafm fit` does; see `fit_head`). Starts `mediafm
serve --heads` on 127.0.0.1 in a subprocess (pinned to --cpus with taskset when given), waits
until it says it is ready (`/api/health`: text encoder, indexes and per-title responses warmed),
and sends `--requests` requests per repeat from `--concurrency` client threads with keep-alive
connections: an even mix of the catalog, title detail, thumbnail, video (a 64 KiB range),
nearest-neighbour, map, text-search and predictions (the head's, default class and spacing, as the
page asks first) endpoints, with random titles and shots and mostly distinct queries. Prints
p50/p99/max per endpoint, errors (anything but 200/206), throughput, the server's CPU time per
request (which other processes on a shared machine do not inflate) and its RSS after each repeat.

Targets: p99 <= 100 ms for the catalog, title, neighbour, thumbnail, map and predictions
endpoints, <= 250 ms for search, no errors, RSS flat across repeats. Exit status 1 on any error
or any p99 above its target (in a repeat or over all of them). The client runs on the same
machine (and, unless --cpus keeps them apart, the same cores) as the server: its CPU time is part
of what is measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # mediafm_testing (test helpers, not in the wheel)

ENDPOINTS = ("titles", "title", "thumb", "video", "neighbors", "map", "search", "predictions")
TARGET_MS = {"title": 100, "thumb": 100, "neighbors": 100, "map": 100, "titles": 100, "search": 250,
             "predictions": 100}
HEAD = "lively"  # the benchmark's head (benchmarks/serve_load.py fit_head)
FUSED_DIM = 2688  # EfficientNet-Lite0 1280 + YAMNet 1024 + MiniLM 384
WORDS = ("river", "mountain", "city", "night", "rain", "dog", "car", "train", "forest", "beach", "storm",
         "market", "kitchen", "bridge", "desert", "a", "the", "quiet", "old", "walks", "runs", "under", "over")


# ----------------------------------------------------------------------------- the store
def build_store(root: Path, titles: int, shots: int) -> Path:
    """The benchmark store under `root` (reused when a complete one with these sizes is there)."""
    from mediafm.search.index import update_index
    from mediafm.search.text_match import default_text_encoder
    from mediafm.search.text_index import TextIndex
    from mediafm.store.catalog import Store
    from mediafm_testing.stores import add_random_title, write_tiny_video

    spec = {"titles": titles, "shots": shots, "dim": FUSED_DIM, "version": 2}
    marker = root / "complete.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return root / "store"
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    video = write_tiny_video(root / "video.mp4", 10)
    store = Store(root / "store", create=True)
    for i in range(titles):
        add_random_title(store, f"title{i:03d}", shots, dim=FUSED_DIM, seed=i, video=video)
    update_index(store, progress=False)
    TextIndex(default_text_encoder(), persist=True).refresh(store)  # as `mediafm index` caches them
    fit_head(store, root / "heads" / HEAD, root / "labels.csv")
    marker.write_text(json.dumps(spec))
    print(f"built {titles} titles x {shots} shots in {time.perf_counter() - t0:.0f} s: {root / 'store'}", flush=True)
    return root / "store"


def fit_head(store, folder: Path, labels: Path, per_title: int = 6, seed: int = 0) -> Path:
    """A binary head fitted on clips of 2-3 shots of the first 40 titles, labelled 1 when the clip's
    mean fused vector projects above the median onto a fixed random direction (a target the
    vectors carry, made from the store itself). Returns the head's folder."""
    from mediafm.apps import fit, save_head
    from mediafm.evaluation.labels import write_labels
    from mediafm_testing.scenes import FAST_PROBE

    rng = np.random.default_rng(seed)
    ids = store.title_ids()
    direction = rng.standard_normal(FUSED_DIM)
    rows = []
    for t in ids[:40]:
        shots, value = store.shots(t), store.features(t) @ direction
        for _ in range(per_title):
            a = int(rng.integers(0, len(shots) - 2))
            b = a + int(rng.integers(1, 3))
            rows.append((t, float(shots.start_s[a]) + 0.1, float(shots.end_s[b]) - 0.1, float(value[a:b + 1].mean())))
    median = float(np.median([r[3] for r in rows]))
    write_labels(labels, [(t, a, b, str(int(v > median))) for t, a, b, v in rows])
    save_head(fit(store.root, labels, "binary", "fused", config=FAST_PROBE).head, folder)
    return folder


# ----------------------------------------------------------------------------- the server
def start_server(store: Path, port: int, cpus: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mediafm", "serve", str(store), "--host", "127.0.0.1", "--port", str(port),
           "--heads", str(store.parent / "heads")]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 600) -> float:
    """Seconds until the server says it is ready (/api/health: encoder, indexes and per-title
    responses warmed)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", "/api/health")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200 and json.loads(body)["ready"]:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- the load
def plan(n: int, titles: int, shots: int, seed: int) -> list[tuple[str, str, dict]]:
    """(endpoint, path, headers) for n requests, an even mix of ENDPOINTS."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = ENDPOINTS[i % len(ENDPOINTS)]
        t, s = f"title{rng.integers(titles):03d}", int(rng.integers(shots))
        headers: dict = {}
        if kind == "titles":
            path = "/api/titles"
        elif kind == "title":
            path = f"/api/titles/{t}"
        elif kind == "thumb":
            path = f"/api/titles/{t}/shots/{s}/thumb.jpg"
        elif kind == "video":
            path, headers = f"/api/titles/{t}/video", {"Range": "bytes=0-65535"}
        elif kind == "neighbors":
            path = f"/api/titles/{t}/shots/{s}/neighbors?k=12"
        elif kind == "map":
            path = f"/api/titles/{t}/map"
        elif kind == "predictions":
            path = f"/api/titles/{t}/predictions?head={HEAD}"
        else:
            q = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
            path = "/api/search?" + urllib.parse.urlencode({"q": f"{q} {int(rng.integers(10_000))}", "k": 20})
        out.append((kind, path, headers))
    rng.shuffle(out)
    return out


def run_load(port: int, requests: list[tuple[str, str, dict]], concurrency: int) -> tuple[dict, list[str], float]:
    """Send `requests` from `concurrency` threads (one keep-alive connection each).

    Returns per-endpoint latencies (s), error descriptions and the wall time."""
    local = threading.local()
    lat: dict[str, list[float]] = {k: [] for k in ENDPOINTS}
    errors: list[str] = []
    lock = threading.Lock()

    def one(req: tuple[str, str, dict]) -> None:
        kind, path, headers = req
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            local.conn = None
            status, detail = 0, f"{type(exc).__name__}: {exc}"
        dt = time.perf_counter() - t
        with lock:
            lat[kind].append(dt)
            if status not in (200, 206):
                errors.append(f"{status} {path}" if status else f"{detail} {path}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, requests))
    return lat, errors, time.perf_counter() - t0


def missed(lat: dict[str, list[float]]) -> list[str]:
    """Endpoints whose p99 latency is above their target."""
    return [k for k, target in TARGET_MS.items() if lat.get(k) and np.percentile(lat[k], 99) * 1000 > target]


def table(lat: dict[str, list[float]]) -> list[str]:
    lines = [f"{'endpoint':<11} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  target p99"]
    slow = missed(lat)
    for kind in ENDPOINTS:
        v = np.array(lat[kind]) * 1000
        if not len(v):
            continue
        target = TARGET_MS.get(kind)
        verdict = "" if target is None else f"<= {target}: {'NOT met' if kind in slow else 'met'}"
        lines.append(f"{kind:<11} {len(v):>5} {np.percentile(v, 50):>8.1f} {np.percentile(v, 99):>8.1f} "
                     f"{v.max():>8.1f}  {verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--titles", type=int, default=100)
    p.add_argument("--shots", type=int, default=25, help="shots per title")
    p.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--cpus", default=None, help="pin the server to these CPUs (taskset -c), e.g. 0,1")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediafm-bench")
    args = p.parse_args(argv)

    store = build_store(args.cache / f"serve-{args.titles}x{args.shots}", args.titles, args.shots)
    port = args.port or _free_port()
    proc = start_server(store, port, args.cpus)
    try:
        ready = wait_ready(port, proc)
        print(f"server pid {proc.pid} on 127.0.0.1:{port}, ready in {ready:.1f} s, RSS {rss_mb(proc.pid):.0f} MB",
              flush=True)
        total: dict[str, list[float]] = {k: [] for k in ENDPOINTS}
        n_errors, rss, slow = 0, [], set()
        for r in range(args.repeats):
            cpu0 = cpu_s(proc.pid)
            lat, errors, wall = run_load(port, plan(args.requests, args.titles, args.shots, seed=r),
                                         args.concurrency)
            cpu = cpu_s(proc.pid) - cpu0
            rss.append(rss_mb(proc.pid))
            n_errors += len(errors)
            slow.update(missed(lat))
            for k in ENDPOINTS:
                total[k] += lat[k]
            print(f"\nrepeat {r + 1}: {args.requests} requests at concurrency {args.concurrency} in {wall:.1f} s "
                  f"({args.requests / wall:.0f} req/s), errors {len(errors)}, server RSS {rss[-1]:.0f} MB, "
                  f"server CPU {cpu:.1f} s ({1000 * cpu / args.requests:.1f} ms per request)")
            print("\n".join(table(lat)))
            for e in errors[:10]:
                print(f"  error: {e}")
        print(f"\nall repeats: errors {n_errors}; server RSS after each repeat (MB): "
              + ", ".join(f"{v:.0f}" for v in rss))
        print("\n".join(table(total)))
        slow.update(missed(total))
        if slow:
            print(f"p99 above target: {', '.join(sorted(slow))}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 1 if n_errors or slow else 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
