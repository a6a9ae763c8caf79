"""Whole-ingest throughput and peak memory on the montage looped to >= 10 minutes.

    python benchmarks/ingest_long.py [--minutes 10] [--detectors adaptive,transnetv2]

Each configuration runs in a fresh subprocess (so peak RSS is that run's alone) and ingests the
looped title with encoders off: decode + shot detection + frame sampling + audio + subtitles +
store writes. Prints seconds of video per wall second (realtime factor) and peak RSS, plus the
same on the 97 s montage to show that memory does not grow with title length. Medians of
`--repeats` runs. CPU is shared with other jobs on a busy machine, so absolute numbers are noisy;
the ratios between rows of one run are what to read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import os
import sys
import tempfile
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("MEDIAFM_SHARED_MEDIA", REPO / "tests" / "media"))

_CHILD = """
import json, resource, sys, time
from mediafm.ingest import IngestConfig, ingest
src, store, det = sys.argv[1:4]
t = time.perf_counter()
r = ingest([src], store, IngestConfig(detector=det), encode=False, show_progress=False)
wall = time.perf_counter() - t
assert len(r.done) == 1, r.summary()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "media": r.media_s, "rss_mb": rss_mb}))
"""


def loop_video(src: Path, dst: Path, minutes: float) -> Path:
    """Concatenate `src` with itself (remux, no re-encode) until it lasts `minutes`.

    Each copy is shifted per stream by that stream's span (first dts to last dts + duration) plus
    0.1 s, so timestamps stay strictly increasing across the seams (B-frames start below 0).
    """
    with av.open(str(src)) as inp:
        duration = float(inp.duration / av.time_base)
        first: dict[int, int] = {}
        end: dict[int, int] = {}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.type not in ("video", "audio"):
                continue
            i = packet.stream.index
            first.setdefault(i, packet.dts)
            end[i] = max(end.get(i, packet.dts), packet.dts + (packet.duration or 0))
        tb = {s.index: s.time_base for s in inp.streams}
    spans = {i: end[i] - first[i] + round(0.1 / tb[i]) for i in first}
    # Video and audio must move by the same time per copy: use the longest span in seconds.
    span_s = max(float(spans[i] * tb[i]) for i in spans)
    loops = max(1, int(-(-minutes * 60 // duration)))
    with av.open(str(dst), "w") as out:
        with av.open(str(src)) as inp:
            streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.index in spans}
        for k in range(loops):
            with av.open(str(src)) as inp:
                for packet in inp.demux(*[s for s in inp.streams if s.index in streams]):
                    if packet.dts is None:
                        continue
                    shift = round(k * span_s / packet.time_base)
                    packet.pts = packet.pts + shift if packet.pts is not None else None
                    packet.dts += shift
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
    return dst


def run_once(src: Path, detector: str, work: Path) -> dict:
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(store), detector],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--detectors", default="adaptive,transnetv2")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        short = MEDIA / "montage.mp4"
        long = loop_video(short, work / "montage_looped.mp4", args.minutes)
        rows = []
        for det in args.detectors.split(","):
            for name, src in (("montage 97 s", short), (f"looped {args.minutes:g} min", long)):
                runs = [run_once(src, det, work) for _ in range(args.repeats)]
                wall = statistics.median(r["wall"] for r in runs)
                media = runs[0]["media"]
                rss = statistics.median(r["rss_mb"] for r in runs)
                rows.append((det, name, media, wall, media / wall, rss))
    print(f"{'detector':<12} {'title':<16} {'media s':>8} {'wall s':>8} {'x realtime':>10} {'peak RSS MB':>12}")
    for det, name, media, wall, rt, rss in rows:
        print(f"{det:<12} {name:<16} {media:>8.1f} {wall:>8.1f} {rt:>10.2f} {rss:>12.0f}")
    by_det: dict[str, list] = {}
    for r in rows:
        by_det.setdefault(r[0], []).append(r)
    for det, (a, b) in ((d, v) for d, v in by_det.items() if len(v) == 2):
        print(f"{det}: RSS looped / short = {b[5] / a[5]:.2f} for {b[2] / a[2]:.1f}x the media")


if __name__ == "__main__":
    main()
