"""The per-title worker: one file in, one `TitleResult` out (shots, sampled frames, audio, text).

`process_title` does no store bookkeeping and catches nothing broadly: the executors (local, Ray)
decide what a failure means. Memory does not grow with the title's length:

- video is decoded ONCE; each frame is converted to the detector's small size and to one
  `frame_side` square candidate; candidates are kept only for the shot still open (bounded, see
  `FrameSampler`), and the K frames of a shot are picked as soon as the detector confirms its end;
- picked frames and int16 audio are appended to `.npy` files in a scratch folder as they come
  (`NpyAppender`), so a 3-hour film costs disk, not RAM;
- the only per-frame state is the PTS, 8 bytes per frame.

`write_result` then moves the files into the store and commits the title row last.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mediafm.errors import MediaDecodeError, MetadataError, SubtitleParseError
from mediafm.ingest.config import IngestConfig
from mediafm.store.catalog import SHOT_COLUMNS, TITLE_COLUMNS, Store, source_key
from mediafm.store.ids import title_id_for
from mediafm.types import Shot

Progress = Callable[[int], None]
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- streamed .npy files
class NpyAppender:
    """Append rows to a `.npy` file without knowing the row count up front.

    A 128-byte header is reserved and filled on `close()`; numpy pads v1 headers to 64-byte
    multiples, and any realistic shape fits in 128 bytes (if not, the file is rewritten once).
    """

    HEADER = 128

    def __init__(self, path: Path, dtype: np.dtype | type, row_shape: tuple[int, ...] = ()):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self._fh.write(b"\0" * self.HEADER)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"row shape {rows.shape[1:]} != {self.row_shape}")
        self._fh.write(rows.tobytes())  # tobytes of a C-contiguous array is one memcpy
        self.rows += rows.shape[0]

    def close(self) -> Path:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.rows, *self.row_shape)})
        data = header.getvalue()
        if len(data) == self.HEADER:
            self._fh.seek(0)
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        else:  # exotic shape: rewrite with the right header (streamed copy)
            self._fh.close()
            tmp = self.path.with_name(self.path.name + ".re")
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(data)
                src.seek(self.HEADER)
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.path)
        return self.path

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- frame sampling
class FrameSampler:
    """Bounded buffer of frame candidates for the open shot; picks K frames per shot.

    The last `recent` frames are kept at full frame rate, because the detector confirms a
    boundary a bounded number of frames after it happens (its look-ahead; TransNetV2's window is
    500 frames): every shot confirmed within that window gets exact picks. Of those, the newest
    `lazy` stay as decoded frames, converted to squares only if picked or when they age
    (conversion costs about as much as decoding, and most frames are never picked); older ones
    are converted (a 224 square is 150 KB, a decoded 4K frame 12 MB). Frames leaving the window
    go to a buffer of at most `capacity` candidates whose density halves each time it fills. So a
    shot of any length holds at most recent + capacity frames. When `lazy` covers recent +
    capacity frames (the usual case below 1080p), older candidates stay decoded too and only the
    K picks are ever converted (measured: 4,895 conversions on an 11-minute 640x360 title, 6 s
    of a 56 s ingest, against 315).

    The picks do not depend on thread timing. The detector may read frames in a thread of its own
    and run up to `lag` frames past a shot's end before the shot is closed, so how many of the
    shot's frames have left the full-rate window (and been thinned) varies from run to run.
    `close` therefore first moves every frame that *could* have left it (the worst case, `lag`
    frames late) the same way; thinning keeps every `stride`-th frame counted from the shot's
    start, so the survivors are a deterministic function of the shot's start, end and `lag`.

    Args:
        k: frames picked per shot (centres of K equal parts).
        recent: frames kept at full rate (should cover the detector's look-ahead).
        capacity: older candidates kept per open shot.
        convert: decoded frame -> [S, S, 3] uint8 (e.g. `lambda f: f.square(224)`).
        lazy: how many of the recent frames may stay unconverted (default: all).
        lag: the most frames pushed past a shot's end before it is closed (the detector's
            look-ahead + 1; default 0: the shot is closed as soon as its last frame is pushed).
    """

    def __init__(self, k: int, recent: int, capacity: int, convert: Callable[[Any], np.ndarray],
                 lazy: int | None = None, lag: int = 0):
        self.k = k
        self.start = 0  # first frame of the open shot
        self.recent: deque[list] = deque()  # [index, frame or square, is_square]
        self.recent_max = recent
        self.lazy_max = recent if lazy is None else lazy
        self.n_lazy = 0  # unconverted entries: always the newest ones of `recent`
        self.older: list[list] = []  # entries like `recent`'s, at the current stride
        self.capacity = capacity
        self.keep_decoded = self.lazy_max >= recent + capacity  # older candidates need no conversion
        self.stride = 1
        self.convert = convert
        self.lag = lag
        self.late = 0  # closes that came later than `lag` (picks may then vary between runs)
        self.converted = 0  # frames converted so far (for benchmarks)

    def _square(self, entry: list) -> np.ndarray:
        if not entry[2]:
            entry[1], entry[2] = self.convert(entry[1]), True
            self.converted += 1
        return entry[1]

    def push(self, index: int, frame: Any) -> None:
        self.recent.append([index, frame, False])
        self.n_lazy += 1
        if len(self.recent) > self.recent_max:
            self._age()
        if self.n_lazy > self.lazy_max:
            self._square(self.recent[len(self.recent) - self.n_lazy])
            self.n_lazy -= 1

    def _age(self) -> None:
        """Move the oldest full-rate frame to the thinned buffer (or drop it)."""
        entry = self.recent.popleft()
        self.n_lazy = min(self.n_lazy, len(self.recent))
        idx = entry[0]
        if idx >= self.start and (idx - self.start) % self.stride == 0:
            if not self.keep_decoded:
                self._square(entry)
            self.older.append(entry)
            if len(self.older) > self.capacity:
                self.stride *= 2
                self.older = [c for c in self.older if (c[0] - self.start) % self.stride == 0]

    def close(self, end: int) -> np.ndarray:
        """Finish the open shot at frame `end` (inclusive): its K frames, [K, S, S, 3]."""
        if self.recent and self.recent[-1][0] > end + self.lag:
            self.late += 1
        # Age what would have aged had the shot been closed `lag` frames late (see class doc).
        limit = min(end, end + self.lag - self.recent_max)
        while self.recent and self.recent[0][0] <= limit:
            self._age()
        s = self.start
        pool = [e for e in self.older if s <= e[0] <= end]
        pool += [e for e in self.recent if s <= e[0] <= end]
        if not pool:  # only if the detector lagged beyond `recent`: nearest frames instead
            pool = self.older + list(self.recent)
        if not pool:
            raise RuntimeError("FrameSampler.close called before any frame was pushed")
        idx = np.array([e[0] for e in pool])
        n = end - s + 1
        # Centre of the k-th of K equal parts, as a frame index.
        targets = s + (np.arange(self.k) + 0.5) * n / self.k - 0.5
        out = [self._square(pool[int(np.argmin(np.abs(idx - t)))]) for t in targets]
        self.older = [c for c in self.older if c[0] > end]
        while self.recent and self.recent[0][0] <= end:
            self.recent.popleft()
        self.n_lazy = min(self.n_lazy, len(self.recent))
        self.start, self.stride = end + 1, 1
        return np.stack(out)


# --------------------------------------------------------------------------- results
@dataclass
class TitleResult:
    """What `process_title` produces. Media arrays live in scratch `.npy` files until written."""

    record: dict  # one row of TITLE_COLUMNS
    shots: pd.DataFrame  # SHOT_COLUMNS
    frames_file: Path | None  # uint8 [n_shots, K, S, S, 3]
    audio_file: Path | None  # int16 [n_samples] at config.audio_rate
    warnings: list[str] = field(default_factory=list)
    media_s: float = 0.0

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
    tag = f"{title_id}.{_owner()}.{uuid.uuid4().hex[:8]}"
    frames_out: NpyAppender | None = None
    audio_out: NpyAppender | None = None
    try:
        audio_file = None
        audio_job: _Background | None = None
        if info.has_audio and (config.keep_audio or not info.has_video):
            audio_out = NpyAppender(scratch / f"{tag}.audio.npy", np.int16)
            if info.has_video:
                # Decoded in a thread while the video pass runs: FFmpeg works with the GIL
                # released, and the video pass leaves part of a core idle (docs/ingest.md).
                audio_warnings: list[str] = []
                audio_job = _Background(_decode_audio, path, config, audio_out, audio_warnings, False)
            else:
                with stage("audio"):
                    audio_file = _decode_audio(path, config, audio_out, warnings, required=True)
        if info.has_video:
            frames_out = NpyAppender(scratch / f"{tag}.frames.npy", np.uint8,
                                     (config.frames_per_shot, config.frame_side, config.frame_side, 3))
            try:
                with stage("shots"):
                    shots, n_frames = _video_shots(path, info, config, frames_out, warnings, progress)
            except BaseException:
                if audio_job is not None:  # stop it before its file is discarded below
                    audio_job.cancel()
                raise
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
            texts, sub_source, sub_encoding = _shot_texts(path, shots, config, warnings)
        with stage("metadata"):
            meta_json = _metadata_json(path, warnings)
    except BaseException:
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
    record = {
        "title_id": title_id, "path": str(path), "source_key": key, "duration_s": float(duration),
        "has_video": bool(info.has_video), "has_audio": audio_file is not None,
        "width": int(info.width), "height": int(info.height), "rotation": int(info.rotation),
        "n_frames": int(n_frames), "n_shots": len(shots),
        "detector": config.detector if info.has_video else segmenter,
        "subtitle_source": sub_source, "subtitle_encoding": sub_encoding, "meta_json": meta_json,
        "warnings_json": json.dumps(warnings), "ingested_at": None,
    }
    assert set(record) == set(TITLE_COLUMNS)
    return TitleResult(record=record, shots=shot_df, frames_file=frames_file, audio_file=audio_file,
                       warnings=warnings, media_s=float(duration))


def _video_shots(path: Path, info, config: IngestConfig, out: NpyAppender, warnings: list[str],
                 progress: Progress | None) -> tuple[list[Shot], int]:
    """The single decode pass: detector frames in, shot boundaries and sampled frames out."""
    from mediafm.media.decode import DecodeStats, iter_frames
    from mediafm.shots.base import shots_from_boundaries

    det = _detector(config.detector, config.device)
    w, h = det.frame_size
    side = config.frame_side
    pts = array("d")  # 8 bytes per frame: the only per-frame state kept
    recent, lazy = _recent_frames(det, config), _lazy_frames(info, config)
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
    threads = _decoder_threads(path, det)

    def feed() -> Iterator[np.ndarray]:
        nonlocal pending
        for f in iter_frames(path, stats=stats, threads=threads):
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


def _decoder_threads(path: Path, det) -> int | None:
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
    return 0 if decode_cost(path) > det.frame_cost() else threads


class _Background:
    """Run `fn(*args, stop=event)` in a thread; `result()` joins it and re-raises its error here."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._value: Any = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

        def run() -> None:
            try:
                self._value = fn(*args, stop=self._stop)
            except BaseException as exc:  # handed to the caller's thread by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"mediafm-{fn.__name__}", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        """Ask `fn` to stop and wait for it; its result and error are dropped."""
        self._stop.set()
        self._thread.join()


# Frames at the end of every shot that the sampler keeps at full rate whatever the thread timing
# (on top of the detector's look-ahead): shots up to this plus `sample_capacity` frames long get
# their exact centre frames; longer ones the nearest of their thinned candidates.
FULL_RATE_FRAMES = 128


def _recent_frames(det, config: IngestConfig) -> int:
    """Frames kept at full rate: the detector's look-ahead plus FULL_RATE_FRAMES, or the config's value.

    `ShotDetector.lookahead` says how late a detector may confirm a boundary.
    """
    if config.recent_frames:
        return config.recent_frames
    return max(64, int(det.lookahead) + 1 + FULL_RATE_FRAMES)


def _lazy_frames(info, config: IngestConfig) -> int:
    """Decoded frames left unconverted, within `config.recent_bytes` (YUV 4:2:0 frame size)."""
    frame_bytes = max(1, info.width * info.height * 3 // 2)
    return max(2 * config.frames_per_shot, config.recent_bytes // frame_bytes)


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
                warnings: list[str]) -> tuple[list[str], str, str]:
    """Per-shot subtitle text, the subtitle source and its text encoding."""
    if not config.subtitles or not shots:
        return [""] * len(shots), "", ""
    from mediafm.media.subtitles import find_subtitles, texts_for_shots

    try:
        found = find_subtitles(path)
    except SubtitleParseError as exc:
        warnings.append(f"subtitles: {exc}")
        return [""] * len(shots), "", ""
    warnings.extend(f"subtitles: {w}" for w in found.warnings)
    if not found.cues:
        return [""] * len(shots), found.source, found.encoding
    return [t or "" for t in texts_for_shots(found.cues, shots)], found.source, found.encoding


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


# --------------------------------------------------------------------------- scratch hygiene
def _owner() -> str:
    """host~pid of this process: scratch files name their writer so dead writers' files are found."""
    return f"{socket.gethostname().replace('.', '_').replace('~', '_')}~{os.getpid()}"


def clean_dead_scratch(scratch_dir: Path) -> int:
    """Remove scratch files left by killed processes of this host (others' live runs are kept)."""
    host = socket.gethostname().replace(".", "_").replace("~", "_")
    removed = 0
    if not scratch_dir.exists():
        return 0
    for f in scratch_dir.iterdir():
        m = re.search(r"\.([^.~]+)~(\d+)\.[0-9a-f]{8}\.", f.name)
        if m is None or m.group(1) != host or _alive(int(m.group(2))):
            continue
        f.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- the writer
def write_result(store: Store, result: TitleResult) -> None:
    """Commit one title: its media files are moved in, then its shots, then its title row (last).

    A re-ingested title (its file changed) first loses its title row and derived tables, so a crash
    in between never leaves a "done" title mixing old and new data; readers of the table folders
    never see a partly written title (store/commit.py). Any failure removes what this call placed.
    """
    try:
        with stage("write"):
            result.record["ingested_at"] = result.record.get("ingested_at") or time.time()
            # A re-ingested file's shots differ: features and embeddings of the old ones must go.
            store.write_title(result.record, result.shots, result.frames_file, result.audio_file,
                              drop_derived=True)
        _clear_stale_failures(store, result.record["path"])
    finally:
        result.discard()


def _clear_stale_failures(store: Store, path: str) -> None:
    """Failure rows of earlier versions of this file (other keys, same path) no longer apply."""
    folder = store.root / "failures"
    if folder.exists() and any(folder.glob("*.parquet")):
        fails = store.failures()
        for key in fails.loc[fails["path"] == str(path), "source_key"]:
            store.clear_failure(key)
