"""TransNetV2 speed ladder: each inference change alone, on the same montage frames, one run.

    python benchmarks/transnetv2_steps.py [--threads 1] [--repeats 3]

Frames: the shared montage (2,435 frames) decoded once to 48x27. Each row times our network's
probabilities for all frames (best of --repeats, wall and CPU time) and scores the boundaries
against truth.json. Rows: the reference schedule in float32 (what `predict_frames` computes),
200-frame windows with 25 frames of context in bf16 (the previous default), the stream in bf16,
and the stream with int8 spatial convolutions (the default). The reference package itself is
timed in benchmarks/ingest.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDIAFM_SHARED_MEDIA", REPO / "tests" / "media"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: per-core efficiency)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from mediafm.media.decode import iter_frames
    from mediafm.shots.metrics import score_boundaries, transitions_from_truth
    from mediafm.shots.transnetv2 import TransNetV2Config, TransNetV2Detector

    frames = np.stack([f.image for f in iter_frames(SHARED / "montage.mp4", size=(48, 27))])
    truth = transitions_from_truth(json.loads((SHARED / "truth.json").read_text()))
    rows = [
        ("reference schedule: 100-frame windows every 50, float32",
         TransNetV2Config(schedule="windows", window=100, context=25, bf16=False)),
        ("200-frame windows, 25 context, bf16 (previous default)", TransNetV2Config(schedule="windows")),
        ("stream: each frame once, bf16", TransNetV2Config(int8=False)),
        ("stream + int8 spatial convs (default)", TransNetV2Config()),
    ]
    print(f"montage: {len(frames)} frames 48x27; torch threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; best of {args.repeats}")
    print(f"\n{'schedule':58} {'wall fps':>9} {'fps/CPU-s':>10} {'vs first':>9} {'F1':>6}")
    base = None
    for name, cfg in rows:
        det = TransNetV2Detector(cfg)
        found = list(det.boundaries(iter(frames)))
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            for _chunk in det.probabilities(iter(frames)):
                pass
            best_wall = min(best_wall, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        fps, cps = len(frames) / best_wall, len(frames) / best_cpu
        base = base or cps
        f1 = score_boundaries(found, truth).f1
        print(f"{name:58} {fps:>9.1f} {cps:>10.1f} {cps / base:>8.2f}x {f1:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
