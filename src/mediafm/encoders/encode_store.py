"""`encode_store`: per-shot video/audio/text features and fused vectors for a catalog store.

Reads each title's shots, sampled frames and audio from the store, batches shots across titles
into the encoders, pools per shot (mean of the K frames' embeddings; mean over audio windows),
adds the film descriptors (`encoders.descriptors`), fuses, and writes `features/<tid>.parquet` plus `meta/<tid>.npy`. The encoder set (names,
versions, dims, fusion) is recorded with every title, titles already encoded with the same set
are skipped, and a store is never left mixing sets silently.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mediafm.encoders import descriptors
from mediafm.encoders.base import Encoder, encoder_class, get_encoder, top_k_names
from mediafm.encoders.config import EncodeConfig
from mediafm.encoders.fusion import fuse
from mediafm.errors import StoreError
from mediafm.store.catalog import AUDIO_RATE, Store
from mediafm.store.lock import store_lock
from mediafm.types import TitleMeta

log = logging.getLogger(__name__)


@dataclass
class EncodeReport:
    """What one `encode_store` run did."""

    encoded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    shots: int = 0
    seconds: float = 0.0
    encoders: dict = field(default_factory=dict)


@dataclass
class ShotInputs:
    """The raw per-shot inputs of one title, as read from the store (arrays memory-mapped)."""

    title_id: str
    shots: pd.DataFrame
    frames: np.ndarray | None  # uint8 [n_shots, K, 224, 224, 3] or None
    audio: np.ndarray | None  # int16 [n_samples] at AUDIO_RATE or None
    meta: TitleMeta | None

    @property
    def n(self) -> int:
        return len(self.shots)

    def video_present(self) -> np.ndarray:
        if self.frames is None or len(self.frames) != self.n:
            return np.zeros(self.n, bool)
        return self.shots["start_frame"].to_numpy() >= 0

    def audio_slices(self) -> list[np.ndarray | None]:
        """Each shot's waveform as float32 in [-1, 1]; None where the title has no audio."""
        if self.audio is None or len(self.audio) == 0:
            return [None] * self.n
        out: list[np.ndarray | None] = []
        for s, e in zip(self.shots["start_s"], self.shots["end_s"]):
            a, b = max(0, int(round(s * AUDIO_RATE))), min(len(self.audio), int(round(e * AUDIO_RATE)))
            out.append(np.asarray(self.audio[a:b], dtype=np.float32) / 32768.0 if b > a else None)
        return out

    def texts(self) -> list[str]:
        return [t.strip() if isinstance(t, str) else "" for t in self.shots["text"]]


def read_inputs(store: Store, title_id: str) -> ShotInputs:
    row = store.title(title_id)
    meta = None
    if row.get("meta_json"):
        meta = TitleMeta(**{k: v for k, v in json.loads(row["meta_json"]).items()
                            if k in ("title", "synopsis", "tags", "genres")})
        meta = None if meta.is_empty else meta
    return ShotInputs(title_id, store.shots(title_id), store.frames(title_id), store.audio(title_id), meta)


# ----------------------------------------------------------------------------- per-modality batches
def _chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def encode_video_shots(enc: Encoder, frames: Sequence[np.ndarray], k: int, batch: int,
                       tick: Callable[[int], None] = lambda n: None) -> tuple[np.ndarray, list[list[str]]]:
    """frames: one uint8 [K, H, W, 3] array per shot -> (mean-pooled [N, D], top-k tags per shot).

    Tags come from the classifier scores averaged over the shot's frames.
    """
    embs, tags = [], []
    for sl in _chunks(len(frames), batch):
        chunk = [np.asarray(f) for f in frames[sl]]
        counts = [len(f) for f in chunk]
        emb, scores = enc.encode_with_scores(np.concatenate(chunk))
        bounds = np.cumsum([0] + counts)
        embs.append(np.stack([emb[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])]))
        if scores is not None:
            pooled = np.stack([scores[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
            tags += top_k_names(pooled, enc.class_names, k)
        else:
            tags += [[] for _ in chunk]
        tick(len(chunk))
    if not embs:
        return np.zeros((0, enc.dim), np.float32), []
    return np.concatenate(embs).astype(np.float32), tags


def encode_audio_shots(enc: Encoder, waves: Sequence[np.ndarray], k: int, batch: int,
                       tick: Callable[[int], None] = lambda n: None) -> tuple[np.ndarray, list[list[str]]]:
    """waves: float32 16 kHz mono per shot -> ([N, D], top-k tags per shot)."""
    embs, tags = [], []
    for sl in _chunks(len(waves), batch):
        emb, scores = enc.encode_with_scores(list(waves[sl]))
        embs.append(emb)
        tags += top_k_names(scores, enc.class_names, k) if scores is not None else [[] for _ in range(len(emb))]
        tick(sl.stop - sl.start)
    if not embs:
        return np.zeros((0, enc.dim), np.float32), []
    return np.concatenate(embs).astype(np.float32), tags


def _scatter(values: np.ndarray, mask: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((len(mask), dim), np.float32)
    out[mask] = values
    return out


# ----------------------------------------------------------------------------- the run
class EncoderSet:
    """The three encoders of one run, constructed once, and the identity recorded in the store."""

    def __init__(self, config: EncodeConfig):
        names = config.names()
        weights = {"video": config.video_weights, "audio": config.audio_weights, "text": config.text_weights}

        def build(modality: str) -> Encoder:
            kwargs = {"weights_dir": weights[modality]} if weights[modality] else {}
            if encoder_class(modality, names[modality]).runs_on_gpu:
                kwargs["device"] = config.device
            return get_encoder(modality, names[modality], **kwargs)

        self.video, self.audio, self.text = build("video"), build("audio"), build("text")
        self.config = config

    def identity(self) -> dict:
        ident = {"video": self.video.identity(), "audio": self.audio.identity(), "text": self.text.identity(),
                 "fusion": {"normalize_modalities": self.config.normalize_modalities}}
        if self.config.descriptors:
            ident[descriptors.BLOCK] = {"name": "film-descriptors", "version": descriptors.VERSION, "dim": descriptors.DIM}
        return ident


def encode_titles(encoders: EncoderSet, titles: Sequence[ShotInputs],
                  tick: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Pure compute: the feature columns of each title (one encoder call per batch across titles)."""
    cfg = encoders.config
    k = cfg.tags_k
    # Flatten every title's shots so one encoder batch may span titles.
    present = [t.video_present() for t in titles]
    v_mask = np.concatenate(present) if titles else np.zeros(0, bool)
    # Memory-mapped views: a shot's K frames are read only when its batch is encoded.
    frames = [t.frames[i] for t, p in zip(titles, present) for i in np.flatnonzero(p)]
    waves_all = [w for t in titles for w in t.audio_slices()]
    a_mask = np.array([w is not None for w in waves_all], bool)
    texts_all = [s for t in titles for s in t.texts()]
    t_mask = np.array([bool(s) for s in texts_all], bool)

    v_emb, v_tags = encode_video_shots(encoders.video, frames, k, cfg.batch_shots, tick)
    a_emb, a_tags = encode_audio_shots(encoders.audio, [w for w in waves_all if w is not None], k, cfg.batch_shots, tick)
    t_emb = encoders.text.encode([s for s in texts_all if s]) if t_mask.any() else np.zeros((0, encoders.text.dim), np.float32)
    # Count absent inputs too, so the bar ends at shots x 3.
    tick(len(t_mask) + int((~v_mask).sum()) + int((~a_mask).sum()))

    video = _scatter(v_emb, v_mask, encoders.video.dim)
    audio = _scatter(a_emb, a_mask, encoders.audio.dim)
    text = _scatter(t_emb, t_mask, encoders.text.dim)
    blocks = [video, audio, text]
    if cfg.descriptors:
        shot_frames = [t.frames[i] if p[i] else None for t, p in zip(titles, present) for i in range(t.n)]
        durations = np.concatenate([(t.shots["end_s"] - t.shots["start_s"]).to_numpy(float) for t in titles]) \
            if titles else np.zeros(0)
        blocks.append(descriptors.shot_descriptors(waves_all, shot_frames, durations, AUDIO_RATE))
    fused = fuse(blocks, cfg.normalize_modalities)
    v_tags_all = iter(v_tags)
    a_tags_all = iter(a_tags)
    video_tags = [next(v_tags_all) if m else [] for m in v_mask]
    audio_tags = [next(a_tags_all) if m else [] for m in a_mask]

    out, start = [], 0
    for t in titles:
        sl = slice(start, start + t.n)
        start += t.n
        cols = {"video": video[sl], "audio": audio[sl], "text": text[sl],
                "video_present": v_mask[sl], "audio_present": a_mask[sl], "text_present": t_mask[sl],
                "fused": fused[sl], "video_tags": video_tags[sl], "audio_tags": audio_tags[sl]}
        if cfg.descriptors:
            cols[descriptors.BLOCK] = blocks[3][sl]
        out.append(cols)
    return out


def _check_not_mixing(store: Store, title_ids: list[str], identity: dict, all_ids: list[str]) -> None:
    """Encoding a subset with a different encoder set than the rest would mix sets: refuse."""
    others = [t for t in all_ids if t not in set(title_ids) and store.has_features(t)]
    differing = [t for t in others if store.feature_encoders(t) != identity]
    if differing:
        raise StoreError(store.root, f"titles {differing[:5]} are encoded with another encoder set; encoding only "
                         f"{len(title_ids)} title(s) with this set would mix them: encode all titles (no title list)")


def _maybe_asr(store: Store, inputs: ShotInputs, asr) -> ShotInputs:
    """Transcribe shots of a title with no timed text at all; writes text_source='asr'."""
    if any(inputs.texts()) or inputs.audio is None:
        return inputs
    audio = np.asarray(inputs.audio, dtype=np.float32) / 32768.0
    texts = asr.transcribe_shots(audio, inputs.shots["start_s"].tolist(), inputs.shots["end_s"].tolist())
    shots = inputs.shots.copy()
    shots["text"] = texts
    shots["text_source"] = ["asr" if t else "" for t in texts]
    store.write_shots(inputs.title_id, shots)
    return ShotInputs(inputs.title_id, shots, inputs.frames, inputs.audio, inputs.meta)


def encode_store(store: Store | str, config: EncodeConfig | None = None, title_ids: Sequence[str] | None = None,
                 progress: bool = True) -> EncodeReport:
    """Encode every (or the given) title of a store.

    Args:
        store: a `Store` or its root folder.
        config: encoder names, batch size, ASR and force flags.
        title_ids: titles to encode (default: all ingested titles).
        progress: show a tqdm bar (stderr) counting shots per modality.

    Returns:
        An `EncodeReport` of the encoded and skipped titles.
    """
    config = config if config is not None else EncodeConfig()
    store = store if isinstance(store, Store) else Store(store)
    with store_lock(store.root, "mediafm encode"):
        return _encode_store(store, config, title_ids, progress)


def _encode_store(store: Store, config: EncodeConfig, title_ids: Sequence[str] | None, progress: bool) -> EncodeReport:
    t0 = time.perf_counter()
    all_ids = store.title_ids()
    ids = list(title_ids) if title_ids is not None else all_ids
    missing = [t for t in ids if t not in set(all_ids)]
    if missing:
        raise StoreError(store.root, f"no such titles: {missing[:5]}")
    encoders = EncoderSet(config)
    identity = encoders.identity()
    _check_not_mixing(store, ids, identity, all_ids)
    report = EncodeReport(encoders=identity)
    todo = []
    for tid in ids:
        if not config.force and store.has_features(tid) and store.feature_encoders(tid) == identity:
            report.skipped.append(tid)
        else:
            todo.append(tid)
    asr = None
    if config.asr:
        from mediafm.encoders.asr import WhisperASR

        asr = WhisperASR()

    n_shots = sum(len(store.shots(t)) for t in todo)
    bar = tqdm(total=3 * n_shots, desc="encode (shots x modalities)", unit="shot", disable=not progress or not todo)
    group: list[ShotInputs] = []

    def flush() -> None:
        for inputs, columns in zip(group, encode_titles(encoders, group, bar.update)):
            store.write_features(inputs.title_id, columns, encoders=identity)
            store.write_meta_embedding(inputs.title_id, encoders.text.encode([inputs.meta.text()])[0]
                                       if inputs.meta is not None else None)
            report.encoded.append(inputs.title_id)
            report.shots += inputs.n
        group.clear()

    for tid in todo:
        inputs = read_inputs(store, tid)
        if asr is not None:
            inputs = _maybe_asr(store, inputs, asr)
        group.append(inputs)
        # Gather small titles into one batch; a long title is chunked inside the encoder calls.
        if sum(g.n for g in group) >= config.batch_shots:
            flush()
    if group:
        flush()
    bar.close()
    report.seconds = time.perf_counter() - t0
    log.info("encoded %d titles (%d shots) in %.1f s; skipped %d already encoded",
             len(report.encoded), report.shots, report.seconds, len(report.skipped))
    return report
