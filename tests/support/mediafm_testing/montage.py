"""Helpers around the real test media (tests/media): the montage as a store with one shot per
piece, and a labelled set of speech vs non-speech clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.linalg import l2_normalize
from mediafm.media.audio import load_audio
from mediafm.media.decode import iter_frames
from mediafm.store.catalog import AUDIO_RATE, Store
from mediafm.types import TitleRecord

K = 3


def piece_shots(truth: dict) -> pd.DataFrame:
    """One shot per piece, tiling the title: piece i runs until piece i+1 starts (black frames of a
    fade stay with the outgoing piece)."""
    fps = 25.0
    starts = [0] + [p["start_frame"] for p in truth["pieces"][1:]]
    ends = [s - 1 for s in starts[1:]] + [truth["frame_count"] - 1]
    rows = []
    for i, (a, b) in enumerate(zip(starts, ends)):
        s, e = a / fps, (b + 1) / fps
        text = " ".join(u["text"] for u in truth["speech"] if u["start_s"] < e and u["end_s"] > s)
        rows.append({"title_id": "montage", "shot_index": i, "start_frame": a, "end_frame": b, "start_s": s,
                     "end_s": e, "text": text, "text_source": "subtitle" if text else ""})
    return pd.DataFrame(rows)


def sample_frames(video: Path, shots: pd.DataFrame, k: int = K) -> np.ndarray:
    """K frames at the centres of K equal parts of each shot, short side 224, centre-cropped."""
    wanted: dict[int, tuple[int, int]] = {}
    for i, (a, b) in enumerate(zip(shots["start_frame"], shots["end_frame"])):
        n = b - a + 1
        for j in range(k):
            wanted[a + int((2 * j + 1) * n / (2 * k))] = (i, j)
    out = np.zeros((len(shots), k, 224, 224, 3), np.uint8)
    for frame in iter_frames(video):
        if frame.index in wanted:
            i, j = wanted[frame.index]
            out[i, j] = frame.square(224)
    return out


def build_montage_store(root: Path, montage: Path, truth: dict) -> Store:
    shots = piece_shots(truth)
    frames = sample_frames(montage, shots)
    audio = np.clip(load_audio(montage, AUDIO_RATE) * 32768.0, -32768, 32767).astype(np.int16)
    store = Store(root, create=True)
    meta = {"title": "Montage", "synopsis": "Fifteen short clips: animation, figurines, wolves and a 1906 film.",
            "tags": ["montage"], "genres": ["documentary"]}
    record = TitleRecord(title_id="montage", path=str(montage), source_key="montage-test", duration_s=97.4,
                         has_video=True, has_audio=True, width=640, height=360, n_frames=truth["frame_count"],
                         n_shots=len(shots), detector="truth", subtitle_source="sidecar", meta_json=json.dumps(meta))
    store.write_title(record, shots, frames, audio)
    return store


def speech_and_other_clips(shared_media: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Clean speech (LibriVox, JFK) vs no speech: Big Buck Bunny's music and effects (3 s pieces),
    the music-only credits of wannaworktogether, and the montage's digitally silent wolf piece."""
    orig = shared_media / "originals"
    speech = [load_audio(f) for f in sorted((orig / "librivox").glob("*.wav"))]
    speech.append(load_audio(orig / "speech_jfk.flac"))
    bbb = load_audio(orig / "big_buck_bunny_0_30.webm")
    other = [bbb[int(s * AUDIO_RATE):int((s + 3) * AUDIO_RATE)] for s in range(0, 27, 3)]
    wanna = load_audio(orig / "wannaworktogether.mp4")
    other += [wanna[int(s * AUDIO_RATE):int((s + 4) * AUDIO_RATE)] for s in (152.0, 160.0, 168.0)]
    montage = load_audio(shared_media / "montage.mp4")
    other.append(montage[int(86.1 * AUDIO_RATE):int(92.1 * AUDIO_RATE)])  # wolf_laugh, no speech near
    return speech, other


def loo_centroid_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out nearest-class-centroid accuracy on unit-normalised embeddings."""
    x = l2_normalize(x)
    correct = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        cents = [x[keep & (y == c)].mean(0) for c in (0, 1)]
        correct += int(np.argmax([x[i] @ c for c in cents]) == y[i])
    return correct / len(x)
