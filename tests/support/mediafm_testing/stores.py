"""Small catalog stores for tests, benchmarks and demos of search and the explorer.

They are written with the real `Store` writers, so they have exactly the layout ingestion writes;
only the content is made up (random or pixel-derived vectors, generated frames).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.linalg import l2_normalize
from mediafm.store.catalog import Store
from mediafm.types import TitleRecord

VOCAB = ("river", "mountain", "city", "night", "rain", "dog", "car", "train", "forest", "beach",
         "storm", "market", "kitchen", "bridge", "desert")
TAGS = ("seashore", "alp", "streetcar", "golden retriever", "sports car", "church", "speedboat", "volcano",
        "Speech", "Music", "Rain", "Dog", "Vehicle", "Wind")


def clustered_vectors(n: int, dim: int, n_clusters: int | None = None, spread: float = 0.7,
                      seed: int = 0) -> np.ndarray:
    """Unit vectors drawn around random centres: embeddings of real shots cluster by scene and
    title, so ANN recall on isotropic noise (which has no neighbours to speak of) says little."""
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(n // 100, 10)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    x = centres[rng.integers(0, n_clusters, n)]
    x += spread * rng.standard_normal((n, dim), dtype=np.float32)
    return l2_normalize(x)


def write_tiny_video(path: Path, seconds: float, fps: int = 10, size: int = 64, seed: int = 0) -> Path:
    """A small H.264 file whose colour changes once per second (a playable source for a title)."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        colour = rng.integers(0, 255, 3)
        for i in range(int(seconds * fps)):
            if i % fps == 0:
                colour = rng.integers(0, 255, 3)
            img = np.broadcast_to(colour.astype(np.uint8), (size, size, 3)).copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _record(title_id: str, path: Path, n_shots: int, duration: float, width: int = 224, height: int = 224,
            has_audio: bool = False, subtitle_source: str = "") -> TitleRecord:
    return TitleRecord(title_id=title_id, path=str(path), source_key=f"fixture-{title_id}", duration_s=duration,
                       has_video=True, has_audio=has_audio, width=width, height=height, n_frames=n_shots,
                       n_shots=n_shots, detector="fixture", subtitle_source=subtitle_source, meta_json="{}")


def _frames_for(colours: np.ndarray) -> np.ndarray:
    """uint8 [n, 1, 224, 224, 3]: a vertical gradient of each colour (so thumbnails differ)."""
    ramp = np.linspace(0.5, 1.0, 224, dtype=np.float32)[None, :, None, None]
    img = colours[:, None, None, :].astype(np.float32) * ramp
    return np.broadcast_to(img[:, None], (len(colours), 1, 224, 224, 3)).astype(np.uint8)


def add_random_title(store: Store, title_id: str, n_shots: int, dim: int = 64, seed: int = 0,
                     video: Path | None = None, shot_s: float = 1.0, with_frames: bool = True) -> None:
    """One title with `n_shots` shots of `shot_s` seconds, random text/tags/fused vectors, frames
    (150 KB per shot: leave them out for big index tests)."""
    rng = np.random.default_rng(seed)
    starts = np.arange(n_shots) * shot_s
    texts = [" ".join(rng.choice(VOCAB, 3, replace=False)) if rng.random() < 0.7 else "" for _ in range(n_shots)]
    shots = pd.DataFrame({"title_id": title_id, "shot_index": np.arange(n_shots), "start_frame": np.arange(n_shots),
                          "end_frame": np.arange(n_shots), "start_s": starts, "end_s": starts + shot_s,
                          "text": texts, "text_source": ["subtitle" if t else "" for t in texts]})
    video = video or (store.root.parent / f"{title_id}.mp4")
    store.write_title(_record(title_id, video, n_shots, n_shots * shot_s), shots,
                      _frames_for(rng.integers(0, 255, (n_shots, 3))) if with_frames else None, None)
    fused = clustered_vectors(n_shots, dim, n_clusters=max(2, n_shots // 5), seed=seed)
    store.write_features(title_id, {
        "fused": fused,
        "video_tags": [list(rng.choice(TAGS[:8], 2, replace=False)) for _ in range(n_shots)],
        "audio_tags": [list(rng.choice(TAGS[8:], 1)) for _ in range(n_shots)],
    }, encoders={"fused": {"name": "fixture-random", "dim": dim}})


def montage_shots(shared_media: Path) -> pd.DataFrame:
    """The montage's true pieces as tiling shots, with montage.srt cue text by cue midpoint."""
    import pysubs2

    truth = json.loads((shared_media / "truth.json").read_text())
    fps = Fraction(truth["fps"])  # exact: frame times are frame / fps
    starts = [0] + [p["start_frame"] for p in truth["pieces"][1:]]
    ends = [s - 1 for s in starts[1:]] + [truth["frame_count"] - 1]
    cues = pysubs2.load(str(shared_media / "montage.srt"))
    rows = []
    for i, (a, b) in enumerate(zip(starts, ends)):
        t0, t1 = float(a / fps), float((b + 1) / fps)
        text = " ".join(c.plaintext.replace("\n", " ") for c in cues if t0 <= (c.start + c.end) / 2000 < t1)
        rows.append({"title_id": "montage", "shot_index": i, "start_frame": a, "end_frame": b, "start_s": t0,
                     "end_s": t1, "text": text, "text_source": "subtitle" if text else ""})
    return pd.DataFrame(rows)


def _decode_middles(video: Path, shots: pd.DataFrame) -> np.ndarray:
    """uint8 [n_shots, 1, 224, 224, 3]: each shot's middle frame, short side 224, centre crop."""
    import av

    wanted = {int((a + b) // 2): i for i, (a, b) in enumerate(zip(shots["start_frame"], shots["end_frame"]))}
    out = np.zeros((len(shots), 1, 224, 224, 3), np.uint8)
    with av.open(str(video)) as container:
        for f, frame in enumerate(container.decode(video=0)):
            if f in wanted:
                img = frame.to_image()
                scale = 224 / min(img.size)
                img = img.resize((max(224, round(img.width * scale)), max(224, round(img.height * scale))))
                left, top = (img.width - 224) // 2, (img.height - 224) // 2
                out[wanted[f], 0] = np.asarray(img.crop((left, top, left + 224, top + 224)).convert("RGB"))
    return out


def add_montage_title(store: Store, shared_media: Path) -> None:
    """The shared montage as a title: true shots, real subtitle text, real frames; its fused vector
    is the shot's downsampled middle frame (8x8 RGB), so visually similar shots are neighbours."""
    shots = montage_shots(shared_media)
    frames = _decode_middles(shared_media / "montage.mp4", shots)
    record = _record("montage", shared_media / "montage.mp4", len(shots), float(shots["end_s"].iloc[-1]),
                     width=640, height=360, has_audio=True, subtitle_source="sidecar")
    store.write_title(record, shots, frames, None)
    small = frames[:, 0].reshape(len(shots), 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(len(shots), -1)
    fused = (small - small.mean(axis=0)).astype(np.float32)
    store.write_features("montage", {"fused": fused,
                                     "video_tags": [[] for _ in range(len(shots))],
                                     "audio_tags": [["Speech"] if t else [] for t in shots["text"]]},
                         encoders={"fused": {"name": "fixture-pixels", "dim": fused.shape[1]}})
