"""The per-title worker: one file in, one `TitleResult` out (shots, sampled frames, audio, text).

`process_title` does no store bookkeeping and catches nothing broadly: the executors (local, Ray)
decide what a failure means. Memory does not grow with the title's length:

- video is decoded ONCE; each frame is converted to the detector's small size (frames too large
  to keep unconverted are first reduced, in YUV, to the sampled frames' short side); candidates
  are kept only for the shot still open (bounded, `ingest.sampling.FrameSampler`), and the K
  frames of a shot are picked as soon as the detector confirms its end;
- picked frames and int16 audio are appended to `.npy` files in a scratch folder as they come
  (`ingest.npy.NpyAppender`), so a 3-hour film costs disk, not RAM;
- the only per-frame state is the PTS, 8 bytes per frame.

`write_result` then moves the files into the store and commits the title row last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mediafm.errors import MediaDecodeError, MetadataError, SubtitleParseError
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.npy import NpyAppender
from mediafm.ingest.sampling import FrameSampler, lazy_frames, recent_frames
from mediafm.store.commit import owned_name
from mediafm.prefetch import Background
from mediafm.store.catalog import SHOT_COLUMNS, Store, source_key
from mediafm.store.ids import title_id_for
from mediafm.types import Cue, Shot, TitleRecord

Progress = Callable[[int], None]
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- results
@dataclass
class TitleResult:
    """What `process_title` produces. Media arrays live in scratch `.npy` files until written."""

    record: TitleRecord
    shots: pd.DataFrame  # SHOT_COLUMNS
    frames_file: Path | None  # uint8 [n_shots, K, S, S, 3]
    audio_file: Path | None  # int16 [n_samples] at config.audio_rate
    warnings: list[str] = field(default_factory=list)
    media_s: float = 0.0
    cues: list[Cue] | None = None  # subtitle cues (kept so ad breaks can avoid splitting a line)

    @property
    def frames(self) -> np.ndarray | None:
        return np.load(self.frames_file, mmap_mode="r") if self.frames_file else None

    @property
    def audio(self) -> np.ndarray | None:
        return np.load(self.audio_file, mmap_mode="r") if self.audio_file else None

    def discard(self) -> None:
        """Remove the scratch files (after they were moved into the store, this is a no-op)."""
        for f in (self.frames_file, self.audio_file):
            if f is not None:
                f.unlink(missing_ok=True)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Tag an escaping exception with the pipeline stage (the executor records it)."""
    try:
        yield
    except BaseException as exc:
        if not hasattr(exc, "mediafm_stage"):
            with contextlib.suppress(AttributeError, TypeError):
                exc.mediafm_stage = name  # type: ignore[attr-defined]
        raise


_DETECTORS: dict[tuple[str, str], object] = {}


def _detector(name: str, device: str = "auto"):
    """One detector per process, name and device: TransNetV2 loads its weights once, not per title."""
    if (name, device) not in _DETECTORS:
        from mediafm.shots.base import detector_class, get_detector

        kwargs = {"device": device} if detector_class(name).runs_on_gpu else {}
        _DETECTORS[(name, device)] = get_detector(name, **kwargs)
    return _DETECTORS[(name, device)]


def process_title(path: str | Path, config: IngestConfig | None = None, *, scratch_dir: str | Path,
                  title_id: str | None = None, key: str | None = None,
                  progress: Progress | None = None) -> TitleResult:
    """Ingest one title into scratch files: shots, K frames per shot, audio, subtitle text.

    Args:
        path: a video or audio file.
        config: ingestion settings.
        scratch_dir: where the streamed `.npy` files go (same file system as the store, so the
            writer can move them into place atomically).
        title_id: the id in the store (default: from the file stem).
        key: the resume key (default: `source_key(path)`).
        progress: called with the number of frames decoded since the last call.

    Returns:
        TitleResult; the caller writes it (`write_result`) or discards it.

    Raises:
        MediaDecodeError (and subclasses) for unreadable/undecodable files. Subtitle and metadata
        problems are warnings, never errors.
    """
    config = config if config is not None else IngestConfig()
    from mediafm.media.decode import probe

    path = Path(path)
    title_id = title_id or title_id_for(path)
    with stage("probe"):
        key = key or source_key(path)
        info = probe(path)
    warnings: list[str] = []
    scratch = Path(scratch_dir)
    tag = owned_name(title_id)
    frames_out: NpyAppender | None = None
    audio_out: NpyAppender | None = None
    audio_job: Background | None = None
    try:
        audio_file = None
        if info.has_audio and (config.keep_audio or not info.has_video):
            audio_out = NpyAppender(scratch / f"{tag}.audio.npy", np.int16)
            if info.has_video:
                # Decoded in a thread while the video pass runs: FFmpeg works with the GIL
                # released, and the video pass leaves part of a core idle (docs/ingest.md).
                audio_warnings: list[str] = []
                audio_job = Background(_decode_audio, path, config, audio_out, audio_warnings, False)
            else:
                with stage("audio"):
                    audio_file = _decode_audio(path, config, audio_out, warnings, required=True)
        if info.has_video:
            frames_out = NpyAppender(scratch / f"{tag}.frames.npy", np.uint8,
                                     (config.frames_per_shot, config.frame_side, config.frame_side, 3))
            with stage("shots"):
                shots, n_frames = _video_shots(path, info, config, frames_out, warnings, progress)
            if audio_job is not None:
                with stage("audio"):
                    audio_file = audio_job.result()
                warnings[:0] = audio_warnings  # audio's warnings first, as when it ran first
            frames_file = frames_out.close()
            duration = shots[-1].end_s if shots else 0.0
        else:
            with stage("shots"):
                shots, segmenter = _audio_shots(audio_file, config)
            frames_file, n_frames = None, 0
            duration = shots[-1].end_s if shots else 0.0
        with stage("subtitles"):
            texts, sub_source, sub_encoding, cues = _shot_texts(path, shots, config, warnings)
        with stage("metadata"):
            meta_json = _metadata_json(path, warnings)
    except BaseException:
        if audio_job is not None:  # stopped (idempotent) before the file it writes is discarded
            audio_job.cancel()
        for out in (frames_out, audio_out):
            if out is not None:
                out.discard()
        raise

    shot_df = pd.DataFrame({
        "title_id": [title_id] * len(shots),
        "shot_index": np.arange(len(shots), dtype=np.int32),
        "start_frame": np.array([s.start_frame for s in shots], dtype=np.int64),
        "end_frame": np.array([s.end_frame for s in shots], dtype=np.int64),
        "start_s": np.array([s.start_s for s in shots], dtype=np.float64),
        "end_s": np.array([s.end_s for s in shots], dtype=np.float64),
        "text": texts,
        "text_source": ["subtitle" if t else "" for t in texts],
    }, columns=SHOT_COLUMNS)
    record = TitleRecord(
        title_id=title_id, path=str(path), source_key=key, duration_s=float(duration),
        has_video=bool(info.has_video), has_audio=audio_file is not None,
        width=int(info.width), height=int(info.height), rotation=int(info.rotation),
        n_frames=int(n_frames), n_shots=len(shots),
        detector=config.detector if info.has_video else segmenter,
        subtitle_source=sub_source, subtitle_encoding=sub_encoding, meta_json=meta_json,
        warnings_json=json.dumps(warnings),
    )
    return TitleResult(record=record, shots=shot_df, frames_file=frames_file, audio_file=audio_file,
                       warnings=warnings, media_s=float(duration), cues=cues)


def _video_shots(path: Path, info, config: IngestConfig, out: NpyAppender, warnings: list[str],
                 progress: Progress | None) -> tuple[list[Shot], int]:
    """The single decode pass: detector frames in, shot boundaries and sampled frames out."""
    from mediafm.media.decode import DecodeStats, iter_frames
    from mediafm.shots.base import shots_from_boundaries

    det = _detector(config.detector, config.device)
    w, h = det.frame_size
    side = config.frame_side
    pts = array("d")  # 8 bytes per frame: the only per-frame state kept
    recent, lazy = recent_frames(det, config), lazy_frames(info, config)
    # Frames too large to keep unconverted until a shot ends (the usual case from 1080p up) are
    # reduced once, in YUV, to the sampled frames' short side: the detector's input and the
    # picked squares then both come from that small frame (docs/ingest.md, "where the time goes").
    reduce = lazy < recent + config.sample_capacity
    # lag: a boundary b comes out after the detector read at most b + lookahead frames, and the
    # shot before it ends at b - 1.
    sampler = FrameSampler(config.frames_per_shot, recent, config.sample_capacity,
                           lambda f: f.square(side), lazy=None if reduce else lazy, lag=int(det.lookahead) + 1)
    stats = DecodeStats()
    pending = 0
    lock = threading.Lock()  # the detector may run feed() in a thread of its own (input_threads)
    threads = _decoder_threads(path, det, config.loop_filter)

    def feed() -> Iterator[np.ndarray]:
        nonlocal pending
        for f in iter_frames(path, stats=stats, threads=threads, loop_filter=config.loop_filter):
            pts.append(f.pts_s)
            if reduce:
                f = f.reduced(side)
            with lock:
                sampler.push(f.index, f)
            if progress is not None:
                pending += 1
                if pending >= 64:  # tqdm.update per frame would cost more than the decode
                    progress(pending)
                    pending = 0
            yield f.rgb(w, h)

    starts = [0]
    for b in det.boundaries(feed()):
        if b <= starts[-1]:
            continue  # defensive: boundaries must increase
        with lock:
            out.append(sampler.close(b - 1)[None])
        starts.append(b)
    if progress is not None and pending:
        progress(pending)
    n = len(pts)
    if n == 0:
        raise MediaDecodeError(path, "video stream has no decodable frames")
    out.append(sampler.close(n - 1)[None])
    if sampler.late:
        log.warning("%s: the shot detector confirmed %d boundaries later than its look-ahead of %d frames; "
                    "sampled frames may differ between runs", path, sampler.late, det.lookahead)
    warnings.extend(f"video: {msg}" for msg in stats.warnings)
    # The last frame lasts as long as the one before it (the container's declared duration is
    # not trusted: truncated files claim more than they hold).
    step = pts[-1] - pts[-2] if n > 1 else (1.0 / float(info.avg_rate) if info.avg_rate else 0.0)
    end_s = pts[-1] + step
    shots = shots_from_boundaries(starts[1:], pts, end_s)
    if len(shots) != out.rows:
        raise RuntimeError(f"{path}: {len(shots)} shots but {out.rows} frame groups")
    return shots, n


def _decoder_threads(path: Path, det, loop_filter: bool = True) -> int | None:
    """Decoder threads for this title: the detector's choice (one, beside its own thread) while
    the detector costs more per frame than decoding, else every core (FFmpeg frame threads).

    Measured per file, because decoding costs 1 ms a frame at 360p H.264 and 30-40 ms at 4K,
    against ~3 ms for TransNetV2 at any resolution: one split tuned at one resolution leaves a
    core idle at the other (docs/ingest.md).
    """
    from mediafm.media.decode import decode_cost

    threads = getattr(det, "input_threads", None)  # read here: it may depend on this thread's torch setting
    if threads is None:
        return None
    return 0 if decode_cost(path, loop_filter=loop_filter) > det.frame_cost() else threads


def _decode_audio(path: Path, config: IngestConfig, out: NpyAppender, warnings: list[str],
                  required: bool, stop: Any = None) -> Path | None:
    """Stream the title's audio into int16 at `config.audio_rate` (float chunks, never the whole).

    `stop` (a threading.Event) ends the decode early when set; the caller then discards `out`.
    """
    from mediafm.errors import MediafmError
    from mediafm.media.audio import iter_audio

    try:
        for chunk in iter_audio(path, rate=config.audio_rate, on_warning=lambda m: warnings.append(f"audio: {m}")):
            if stop is not None and stop.is_set():
                return None
            out.append(np.clip(np.rint(chunk * 32768.0), -32768, 32767).astype(np.int16))  # readers divide by 32768
    except MediafmError as exc:
        if required:
            raise
        # A video whose audio track is broken is still a title: keep the picture, report it.
        warnings.append(f"audio: {exc.problem}; ingested without audio")
        out.discard()
        return None
    if out.rows == 0:
        if required:
            raise MediaDecodeError(path, "audio stream has no decodable samples")
        warnings.append("audio: stream has no decodable samples; ingested without audio")
        out.discard()
        return None
    return out.close()


def _audio_shots(audio_file: Path | None, config: IngestConfig) -> tuple[list[Shot], str]:
    """Segment an audio-only title (silence-aware when `mediafm.shots.audio` is installed).

    Returns the shots and the segmenter's name (kept in the title row's `detector`).
    """
    samples = np.load(audio_file, mmap_mode="r")
    rate = config.audio_rate
    try:
        from mediafm.shots.audio import segment_audio
    except ImportError:
        segment_audio = None
    if segment_audio is not None:
        return list(segment_audio(samples, rate, config)), "audio"
    # Fallback: fixed windows; the last one absorbs a remainder shorter than half a window.
    total = len(samples) / rate
    win = config.audio_window_s
    n = max(1, int(round(total / win)))
    edges = [min(i * win, total) for i in range(n)] + [total]
    return [Shot(i, -1, -1, float(edges[i]), float(edges[i + 1])) for i in range(n)], "audio-window"


def _shot_texts(path: Path, shots: list[Shot], config: IngestConfig,
                warnings: list[str]) -> tuple[list[str], str, str, list[Cue] | None]:
    """Per-shot subtitle text, the subtitle source, its text encoding and the cues (None: not
    looked for, or unreadable)."""
    if not config.subtitles or not shots:
        return [""] * len(shots), "", "", None
    from mediafm.media.subtitles import find_subtitles, texts_for_shots

    try:
        found = find_subtitles(path)
    except SubtitleParseError as exc:
        warnings.append(f"subtitles: {exc}")
        return [""] * len(shots), "", "", None
    warnings.extend(f"subtitles: {w}" for w in found.warnings)
    if not found.cues:
        return [""] * len(shots), found.source, found.encoding, []
    return [t or "" for t in texts_for_shots(found.cues, shots)], found.source, found.encoding, list(found.cues)


def _metadata_json(path: Path, warnings: list[str]) -> str:
    from mediafm.media.metadata import load_metadata

    try:
        loaded = load_metadata(path)
    except MetadataError as exc:
        warnings.append(f"metadata: {exc}")
        return ""
    # The contract is (TitleMeta, warnings); a bare TitleMeta (older signature) is accepted too.
    meta, meta_warnings = loaded if isinstance(loaded, tuple) else (loaded, [])
    warnings.extend(f"metadata: {w}" for w in meta_warnings)
    if meta is None or meta.is_empty and not meta.title:
        return ""
    return json.dumps(asdict(meta), ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------- the writer
def write_result(store: Store, result: TitleResult) -> None:
    """Commit one title: its media files are moved in, then its shots, then its title row (last).

    A re-ingested title (its file changed) first loses its title row and derived tables, so a crash
    in between never leaves a "done" title mixing old and new data; readers of the table folders
    never see a partly written title (store/commit.py). Any failure removes what this call placed.
    """
    try:
        with stage("write"):
            result.record = replace(result.record, ingested_at=result.record.ingested_at or time.time())
            # A re-ingested file's shots differ: features and embeddings of the old ones must go.
            store.write_title(result.record, result.shots, result.frames_file, result.audio_file,
                              drop_derived=True)
    finally:
        result.discard()
    tidy_after_commit(store, result.record.title_id, result.record.source_key, result.record.path, result.cues)


def tidy_after_commit(store: Store, title_id: str, key: str, path: str | Path, cues=None) -> None:
    """What follows a title's commit: its cue table, and failure rows that no longer apply.

    The title is published already, so a failure here must not record it as failed: each step is
    tried on its own and a failed one is logged. The cues come after the title row, like every
    table derived from a published title: until they are there, readers re-read them from the
    title's source.
    """
    steps = [("its cue table", lambda: store.write_cues(title_id, cues))] if cues is not None else []
    steps += [("its failure row", lambda: store.clear_failure(key)),
              ("failure rows of earlier versions", lambda: _clear_stale_failures(store, str(path)))]
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            log.warning("%s: written, but %s could not be updated (%s: %s)", title_id, what,
                        type(exc).__name__, exc)


def _clear_stale_failures(store: Store, path: str) -> None:
    """Failure rows of earlier versions of this file (other keys, same path) no longer apply."""
    folder = store.root / "failures"
    if folder.exists() and any(folder.glob("*.parquet")):
        fails = store.failures()
        for key in fails.loc[fails["path"] == str(path), "source_key"]:
            store.clear_failure(key)
