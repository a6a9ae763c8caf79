"""Media I/O benchmark on the montage: decode floor, pixel conversion costs, threading, audio.

    python benchmarks/media.py [--video PATH] [--repeats 3]

Prints one table of medians measured in this run (CPU shared with whatever else runs: compare the
ratios, not absolute numbers across machines).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import av

from mediafm.media.audio import iter_audio
from mediafm.media.decode import iter_frames, probe

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "montage.mp4"


def _raw_decode(path: Path, threads: str) -> int:
    """PyAV decode with no mediafm code at all: the floor."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = threads
        return sum(1 for _ in c.decode(s))


def _timed_round_robin(fns: list, repeats: int) -> list[tuple[float, int]]:
    """Median seconds and result per function; runs interleave so load changes hit all alike."""
    times: list[list[float]] = [[] for _ in fns]
    results = [0] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t)
    return [(statistics.median(t), r) for t, r in zip(times, results)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    info = probe(args.video)
    video = args.video

    def frames_then(convert):
        return lambda: sum(1 for f in iter_frames(video) if convert(f) is not None)

    rows = [
        ("PyAV decode, no threads", lambda: _raw_decode(args.video, "SLICE")),
        ("PyAV decode, thread_type=AUTO", lambda: _raw_decode(args.video, "AUTO")),
        ("iter_frames (exact PTS, checks)", lambda: sum(1 for _ in iter_frames(args.video))),
        ("iter_frames + rgb(48, 27)", frames_then(lambda f: f.rgb(48, 27))),
        ("iter_frames + rgb() native", frames_then(lambda f: f.rgb())),
        ("iter_frames + square(224)", frames_then(lambda f: f.square(224))),
    ]
    print(f"video: {video.name} {info.width}x{info.height} {info.duration_s:.1f}s, "
          f"median of {args.repeats}")
    print(f"{'step':36s} {'frames/s':>10s} {'x realtime':>11s} {'vs floor':>9s}")
    fns = [fn for _, fn in rows] + [lambda: sum(len(c) for c in iter_audio(args.video))]
    measured = _timed_round_robin(fns, args.repeats)
    floor = measured[0][1] / measured[0][0]
    for (name, _), (sec, n) in zip(rows, measured):
        fps = n / sec
        print(f"{name:36s} {fps:10.0f} {info.duration_s / sec:11.1f} {fps / floor:9.2f}")
    sec, _ = measured[-1]
    print(f"{'iter_audio 16 kHz mono':36s} {'-':>10s} {info.duration_s / sec:11.1f} {'-':>9s}")


if __name__ == "__main__":
    main()
