"""Encoder throughput, whole-title realtime factor, peak memory, and the quality measurements
behind the choices in docs/encoders.md (audio default, per-modality normalisation in fusion).

    python benchmarks/encode.py            # everything (~5-10 min on 2 shared cores)
    python benchmarks/encode.py --quick    # throughput only

Numbers are medians of `--repeat` runs in this one process; on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # mediafm_testing (test helpers, not in the wheel)
MEDIA = Path(os.environ.get("MEDIAFM_SHARED_MEDIA", REPO / "tests" / "media"))


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(repeat: int) -> None:
    from mediafm.encoders import available_encoders, get_encoder
    from mediafm.media.audio import load_audio

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (48, 224, 224, 3), dtype=np.uint8)  # 16 shots x K=3
    audio = load_audio(MEDIA / "montage.mp4")
    waves = [audio[i * 16_000 * 4:(i + 1) * 16_000 * 4] for i in range(16)]  # 16 shots of 4 s
    texts = [u["text"] for u in json.loads((MEDIA / "truth.json").read_text())["speech"]] * 8
    print("\n## per-encoder throughput (16 shots per call; video K=3 frames/shot, audio 4 s/shot)")
    print(f"{'modality':8} {'encoder':18} {'load s':>7} {'shots/s':>9} {'unit/s':>14}")
    for row in available_encoders():
        if not row.available or row.reason:  # skip loaders that need user weights
            continue
        t0 = time.perf_counter()
        enc = get_encoder(row.modality, row.name)
        load = time.perf_counter() - t0
        batch = {"video": frames, "audio": waves, "text": texts}[row.modality]
        enc.encode(batch[:2])  # warm-up
        dt = _median_time(lambda: enc.encode(batch), repeat)
        shots = 16 if row.modality != "text" else len(texts)
        unit = {"video": f"{48 / dt:8.1f} img/s", "audio": f"{64 / dt:8.1f} x RT", "text": ""}[row.modality]
        print(f"{row.modality:8} {row.name:18} {load:7.1f} {shots / dt:9.1f} {unit:>14}")


def whole_title(repeat: int) -> None:
    from mediafm.encoders.config import EncodeConfig
    from mediafm.encoders.encode_store import encode_store
    from mediafm.ingest import IngestConfig, ingest
    from mediafm.media.decode import probe
    from mediafm.store.catalog import Store

    print(f"\n## whole title: ingest (decode + shots + frames/audio) then encode with the defaults, median of {repeat}")
    print(f"{'title':24} {'dur s':>6} {'shots':>6} {'ingest s':>9} {'encode s':>9} {'total xRT':>10} {'encode xRT':>11}")
    for path in (MEDIA / "originals" / "wannaworktogether.mp4", MEDIA / "montage.mp4"):
        dur = probe(path).duration_s
        ing, enc, n = [], [], 0
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                ingest([path], tmp, IngestConfig(), encode=False, show_progress=False)
                t1 = time.perf_counter()
                encode_store(Store(tmp), EncodeConfig(), progress=False)
                t2 = time.perf_counter()
                n = len(Store(tmp).shots())
                ing.append(t1 - t0)
                enc.append(t2 - t1)
        i, e = statistics.median(ing), statistics.median(enc)
        print(f"{path.name:24} {dur:6.1f} {n:6d} {i:9.1f} {e:9.1f} {dur / (i + e):10.1f} {dur / e:11.1f}")


def audio_quality() -> None:
    from mediafm.encoders import get_encoder

    import mediafm_testing.montage as tm

    speech, other = tm.speech_and_other_clips(MEDIA)
    y = np.array([1] * len(speech) + [0] * len(other))
    secs = sum(len(w) for w in speech + other) / 16_000
    print(f"\n## audio encoders: speech ({len(speech)} clips) vs music/effects/silence ({len(other)} clips), {secs:.0f} s")
    print(f"{'encoder':18} {'LOO centroid acc':>17} {'x realtime':>11} {'own classifier: Speech top-1':>29}")
    for name in ("yamnet", "aisfx", "whisper-tiny-en"):
        enc = get_encoder("audio", name)
        enc.encode(speech[:1])
        t0 = time.perf_counter()
        emb, scores = enc.encode_with_scores(speech + other)
        dt = time.perf_counter() - t0
        cls = "-"
        if scores is not None:
            top = [enc.class_names[i] == "Speech" for i in np.argmax(scores, 1)]
            cls = f"{sum(top[:len(speech)])}/{len(speech)} speech, {sum(top[len(speech):])}/{len(other)} other"
        print(f"{name:18} {tm.loo_centroid_accuracy(emb, y):17.3f} {secs / dt:11.1f} {cls:>29}")


def fusion_quality() -> None:
    """Same-source retrieval on the montage: each piece cut in two halves (two shots); a query
    half should retrieve its sibling half first. Also: each modality's share of |fused|^2."""
    from dataclasses import replace

    import pandas as pd

    from mediafm.encoders.config import EncodeConfig
    from mediafm.encoders.fusion import fuse
    from mediafm.encoders.encode_store import encode_store
    from mediafm.types import TitleRecord

    import mediafm_testing.montage as tm

    truth = json.loads((MEDIA / "truth.json").read_text())
    shots = tm.piece_shots(truth)
    halves = []
    for _, r in shots.iterrows():
        mid = (r.start_frame + r.end_frame + 1) // 2
        for a, b in ((r.start_frame, mid - 1), (mid, r.end_frame)):
            halves.append({**r.to_dict(), "start_frame": a, "end_frame": b, "start_s": a / 25, "end_s": (b + 1) / 25})
    halves = pd.DataFrame(halves)
    halves["shot_index"] = np.arange(len(halves))
    # Text of the overlapping cues, so halves of a subtitled piece may share or differ in text.
    halves["text"] = [" ".join(u["text"] for u in truth["speech"] if u["start_s"] < e and u["end_s"] > s)
                      for s, e in zip(halves["start_s"], halves["end_s"])]
    halves["text_source"] = np.where(halves["text"] != "", "subtitle", "")
    with tempfile.TemporaryDirectory() as tmp:
        store = tm.build_montage_store(Path(tmp), MEDIA / "montage.mp4", truth)
        from mediafm.media.audio import load_audio
        audio = np.clip(load_audio(MEDIA / "montage.mp4") * 32768, -32768, 32767).astype(np.int16)
        record = replace(TitleRecord.from_row(store.title("montage")), n_shots=len(halves))
        store.write_title(record, halves, tm.sample_frames(MEDIA / "montage.mp4", halves), audio)
        encode_store(store, EncodeConfig(), progress=False)
        parts = {m: store.features("montage", m) for m in ("video", "audio", "text")}
    sibling = np.arange(len(halves)) ^ 1

    def recall(x: np.ndarray) -> float:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return float(np.mean(np.argmax(sim, 1) == sibling))

    # Second task: does the fused vector still know which half-pieces hold speech (overlaid or
    # original narration)? That information lives in the audio and text blocks.
    spans = [(u["start_s"], u["end_s"]) for u in truth["speech"] + truth["untranscribed_speech"]]
    speech = np.array([int(any(a < e and b > s for a, b in spans))
                       for s, e in zip(halves["start_s"], halves["end_s"])])
    tm_acc = tm.loo_centroid_accuracy

    print(f"\n## fusion on the montage cut into {len(halves)} half-pieces: sibling-half retrieval recall@1,")
    print(f"## speech/no-speech LOO centroid accuracy ({speech.sum()} speech halves), share of |fused|^2")
    print(f"{'vectors':34} {'recall@1':>9} {'speech acc':>11} {'video/audio/text share':>23}")
    for m, x in parts.items():
        print(f"{m + ' only':34} {recall(x):9.3f} {tm_acc(x + 1e-9, speech):11.3f}")
    dims = np.cumsum([0] + [x.shape[1] for x in parts.values()])
    for norm in (True, False):
        f = fuse(list(parts.values()), normalize_modalities=norm)
        share = [float(np.mean(np.sum(f[:, a:b] ** 2, 1))) for a, b in zip(dims[:-1], dims[1:])]
        label = "fused, each modality L2-normalised" if norm else "fused, raw concatenation"
        print(f"{label:34} {recall(f):9.3f} {tm_acc(f, speech):11.3f} {' / '.join(f'{s:.2f}' for s in share):>23}")


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="throughput only")
    ap.add_argument("--only", choices=("throughput", "title", "audio", "fusion"), help="run one section")
    args = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"# encode benchmark: {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    sections = {"throughput": lambda: throughput(args.repeat), "title": lambda: whole_title(args.repeat),
                "audio": audio_quality, "fusion": fusion_quality}
    for name, fn in sections.items():
        if (args.only or name) == name and not (args.quick and name != "throughput"):
            fn()
    print(f"\npeak RSS of this process: {_peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
