"""Video decoding with PyAV: stream info and a streaming frame iterator with exact times.

Time: `Frame.pts_s = (pts - first_pts) * time_base`, computed with the stream's Fraction time
base, so variable-frame-rate video gets its real times (never `index / fps`). Time 0 is the first
decoded video frame, which is also time 0 for audio and subtitles (see audio.py).

Robustness: every PyAV/FFmpeg error is turned into `MediaDecodeError` naming the file. A corrupt
packet or frame mid-stream is skipped and reported through `on_warning` (decoding continues).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter
import numpy as np

from mediafm.errors import MediaDecodeError, MediafmError, MissingStreamError
from mediafm.types import VideoInfo

WarningSink = Callable[[str], None]

# Text subtitle codecs we can read cues from (bitmap subtitles such as dvd_subtitle are skipped).
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text"})

# A decoded title ending this much earlier than its container claims is reported as truncated.
_TRUNCATION_SLACK_S = 1.0
# After this many exactly regular frame steps, a jump of >= 2 steps is reported as lost frames.
_REGULAR_RUN = 8


def check_readable(path: str | Path) -> Path:
    """Fail early, with a clear reason, on paths FFmpeg would report cryptically."""
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise MediaDecodeError(p, "cannot read: broken symbolic link (its target does not exist)")
        raise MediaDecodeError(p, "file does not exist")
    if p.is_dir():
        raise MediaDecodeError(p, "is a directory, not a media file")
    if not os.access(p, os.R_OK):
        raise MediaDecodeError(p, "permission denied (file is not readable)")
    if p.stat().st_size == 0:
        raise MediaDecodeError(p, "file is empty (0 bytes)")
    return p


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading; every failure becomes MediaDecodeError naming the file."""
    p = check_readable(path)
    try:
        return av.open(str(p), mode="r", metadata_errors="replace")
    except av.error.PermissionError as e:
        raise MediaDecodeError(p, "permission denied (file is not readable)") from e
    except av.error.InvalidDataError as e:
        raise MediaDecodeError(p, f"not a readable media file or truncated ({_reason(e)})") from e
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaDecodeError(p, f"cannot open as media ({_reason(e)})") from e


def _reason(e: BaseException) -> str:
    """FFmpeg's own message without PyAV's errno/filename decoration."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).strip() or type(e).__name__


def _rotation_cw(frame: av.VideoFrame | None, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation in {0, 90, 180, 270}.

    FFmpeg turns a container's display matrix (or an old `rotate` tag) into frame side data;
    PyAV's `frame.rotation` reads it as counter-clockwise degrees. The tag is the fallback.
    """
    ccw = 0
    if frame is not None:
        try:
            ccw = int(frame.rotation or 0)
        except (AttributeError, ValueError, TypeError):
            ccw = 0
    if ccw == 0:
        tag = stream.metadata.get("rotate")
        try:
            return int(round(float(tag) / 90.0)) * 90 % 360 if tag else 0
        except ValueError:
            return 0
    return int(round(-ccw / 90.0)) * 90 % 360


def _first_video_frame(container, stream) -> av.VideoFrame | None:
    """Decode the first frame of `stream` (probe uses it for rotation and the exact start)."""
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.FFmpegError:
                continue  # a bad first packet is not fatal for probing
    except av.FFmpegError:
        return None
    return None


def probe(path: str | Path) -> VideoInfo:
    """Read a file's stream information.

    Args:
        path: a video or audio file in any container FFmpeg reads.

    Returns:
        VideoInfo with duration, stream kinds, displayed size (after rotation), clockwise
        rotation, nominal frame rate, time base, codecs and the indices of text subtitle streams.

    Raises:
        MediaDecodeError: missing/unreadable/empty/non-media/truncated file, or no audio or video
        stream at all (MissingStreamError).
    """
    p = check_readable(path)
    with open_container(p) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        subs = tuple(
            s.index for s in container.streams.subtitles if s.codec_context.name in TEXT_SUBTITLE_CODECS
        )
        if video is None and audio is None:
            raise MissingStreamError(p, "no audio or video stream")
        duration = _duration_s(container, video, audio)
        if video is None:
            return VideoInfo(
                duration_s=duration, has_video=False, has_audio=True,
                audio_codec=audio.codec_context.name, subtitle_streams=subs,
            )
        first = _first_video_frame(container, video)
        if first is None:
            raise MediaDecodeError(p, "video stream has no decodable frames (corrupt or truncated)")
        rotation = _rotation_cw(first, video)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            duration_s=duration,
            has_video=True,
            has_audio=audio is not None,
            width=w,
            height=h,
            rotation=rotation,
            avg_rate=video.average_rate,
            time_base=video.time_base,
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else "",
            subtitle_streams=subs,
        )


def _duration_s(container, video, audio) -> float:
    """Duration in seconds: the video stream's own (shots tile the video), else the audio's,
    else the container's."""
    for s in (video, audio):
        if s is not None:
            d, own = _declared_duration_s(container, s)
            if own:
                return d
    return container.duration / av.time_base if container.duration is not None else 0.0


class Scalers:
    """swscale contexts shared by the frames of one stream, one per (output format, width, height).

    `to_ndarray(width=, height=)` builds a new context every call (measured 2.6 ms/frame vs 0.16 ms
    reused, 640x360). Frames reduced in size (`Frame.reduced`) get their own set, `reduced`: a
    context is tied to its input size too. A context is not thread-safe: threads that convert
    frames of one stream at once must ask for different (format, size) keys, as ingest's detector
    input (48x27) and picked squares (224) do, or hold a lock.
    """

    def __init__(self) -> None:
        self._contexts: dict[tuple[str, int, int], VideoReformatter] = {}
        self._reduced: Scalers | None = None

    def get(self, fmt: str, width: int, height: int) -> VideoReformatter:
        key = (fmt, width, height)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = VideoReformatter()
        return ctx

    @property
    def reduced(self) -> Scalers:
        if self._reduced is None:
            self._reduced = Scalers()
        return self._reduced


@dataclass
class Frame:
    """One decoded video frame. Pixels are converted only on request (fast, in C via swscale).

    `index` counts decoded frames in presentation order from 0; `pts_s` is seconds from the first
    frame, from PTS. `rotation` is the clockwise display rotation applied by `rgb`/`square`.
    """

    index: int
    pts_s: float
    av_frame: av.VideoFrame = field(repr=False)
    rotation: int = 0
    size: tuple[int, int] | None = None  # default (width, height) for `image`
    scalers: Scalers = field(default_factory=lambda: Scalers(), repr=False, compare=False)

    @property
    def width(self) -> int:
        """Displayed width (after rotation)."""
        return self.av_frame.height if self.rotation in (90, 270) else self.av_frame.width

    @property
    def height(self) -> int:
        return self.av_frame.width if self.rotation in (90, 270) else self.av_frame.height

    @property
    def image(self) -> np.ndarray:
        """RGB uint8 HxWx3 at the iterator's `size` (or native size)."""
        return self.rgb(*self.size) if self.size else self.rgb()

    def rgb(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """RGB uint8 [H, W, 3] of the displayed picture, squashed to width x height if given.

        Width and height are in displayed orientation (after rotation).
        """
        w = width or self.width
        h = height or self.height
        if self.rotation in (90, 270):
            w, h = h, w  # scale in coded orientation, then rotate
        arr = self.scalers.get("rgb24", w, h).reformat(self.av_frame, width=w, height=h, format="rgb24").to_ndarray()
        return _rotate(arr, self.rotation)

    def reduced(self, side: int) -> Frame:
        """This frame scaled (in YUV, no RGB conversion) so its short side is `side`, as a Frame
        whose `rgb`/`square` then cost a small image's conversion; itself when already that small.

        One full-size pass per frame instead of two (detector size, then square for the frames
        that may be picked): at 1080p that is 1.7 ms against 5.7 (measured in docs/ingest.md).
        """
        cw, ch = self.av_frame.width, self.av_frame.height
        scale = side / min(cw, ch)
        if scale >= 1:
            return self
        w, h = max(side, round(cw * scale)), max(side, round(ch * scale))
        small = self.scalers.get("yuv420p", w, h).reformat(self.av_frame, width=w, height=h, format="yuv420p")
        return Frame(self.index, self.pts_s, small, self.rotation, self.size, self.scalers.reduced)

    def square(self, side: int) -> np.ndarray:
        """RGB uint8 [side, side, 3]: short side scaled to `side`, then centre-cropped."""
        w, h = self.width, self.height
        scale = side / min(w, h)
        sw, sh = max(side, round(w * scale)), max(side, round(h * scale))
        img = self.rgb(sw, sh)
        y0, x0 = (sh - side) // 2, (sw - side) // 2
        return np.ascontiguousarray(img[y0 : y0 + side, x0 : x0 + side])


def _rotate(arr: np.ndarray, rotation_cw: int) -> np.ndarray:
    if rotation_cw == 0:
        return arr
    # np.rot90 with positive k turns counter-clockwise; we need clockwise.
    return np.ascontiguousarray(np.rot90(arr, k=-(rotation_cw // 90)))


@dataclass
class DecodeStats:
    """Counters filled while iterating (pass one in to read them afterwards)."""

    frames: int = 0
    skipped_packets: int = 0
    corrupt_frames: int = 0
    missing_pts: int = 0
    warnings: list[str] = field(default_factory=list)


def iter_frames(
    path: str | Path,
    size: tuple[int, int] | None = None,
    *,
    on_warning: WarningSink | None = None,
    stats: DecodeStats | None = None,
    threads: int | None = None,
    loop_filter: bool = True,
) -> Iterator[Frame]:
    """Decode the first video stream, one frame at a time (never holds the title).

    Args:
        path: the video file.
        size: default (width, height) for `Frame.image`; `rgb()`/`square()` take their own sizes.
        on_warning: called with a one-line message for every skipped corrupt packet/frame.
        stats: optional DecodeStats filled with counters as frames are decoded.
        threads: decoder threads (None: FFmpeg's choice, frame and slice threads on every core).
        loop_filter: False skips the codec's in-loop deblocking filter (FFmpeg `skip_loop_filter`):
            less decoding work, pictures slightly off the encoder's (docs/ingest.md).

    Yields:
        Frame in presentation order with exact `pts_s` (seconds from the first frame).

    Raises:
        MediaDecodeError: unreadable file; MissingStreamError: no video stream.
    """
    p = check_readable(path)
    stats = stats if stats is not None else DecodeStats()

    def warn(msg: str) -> None:
        stats.warnings.append(msg)
        if on_warning is not None:
            on_warning(f"{p.name}: {msg}")

    with open_container(p) as container:
        if not container.streams.video:
            raise MissingStreamError(p, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads; output order is unchanged
        if threads:
            # One thread decodes H.264 with 40% less CPU than frame threads on 2 cores (measured
            # 10.6 vs 18 CPU-s for 17k 640x360 frames): worth it when other work fills the cores.
            stream.codec_context.thread_count = threads
        _set_loop_filter(stream, loop_filter)
        tb: Fraction = stream.time_base or Fraction(1, 90000)
        # Step used only for frames without a PTS: the nominal frame duration in time-base units.
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        step = max(1, round(1 / (rate * tb)))
        rotation: int | None = None
        first_pts: int | None = None
        scalers = Scalers()
        last_pts: int | None = None
        index = 0
        regular = 0  # how many consecutive PTS steps were exactly the nominal frame step
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:
                # The demuxer itself failed (damaged container): what came so far is kept.
                stats.skipped_packets += 1
                warn(f"demuxing stopped after frame {index}: {_reason(e)}")
                break
            if packet.is_corrupt:
                stats.skipped_packets += 1
                warn(f"corrupt packet at pts {packet.pts} skipped")
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                stats.skipped_packets += 1
                warn(f"undecodable packet at pts {packet.pts} skipped ({_reason(e)})")
                continue
            for frame in frames:
                if frame.is_corrupt:
                    stats.corrupt_frames += 1
                    warn(f"corrupt frame at pts {frame.pts} skipped")
                    continue
                pts = frame.pts
                if pts is None:
                    # No timestamp: continue the time line at the nominal rate.
                    stats.missing_pts += 1
                    pts = (last_pts + step) if last_pts is not None else 0
                if last_pts is not None and pts <= last_pts:
                    # Non-increasing PTS would break shot times; keep the order, nudge forward.
                    stats.missing_pts += 1
                    pts = last_pts + 1
                if first_pts is None:
                    first_pts = pts
                    rotation = _rotation_cw(frame, stream)
                elif pts - last_pts == step:
                    regular += 1
                else:
                    if regular >= _REGULAR_RUN and pts - last_pts >= 2 * step:
                        # A constant-rate stream that suddenly jumps lost frames (the demuxer
                        # resynced past damage); true VFR streams are never this regular.
                        missing = round((pts - last_pts) / step) - 1
                        at = float((pts - first_pts) * tb)
                        warn(f"{missing} frame(s) missing before {at:.3f}s (damaged data skipped)")
                    regular = 0
                last_pts = pts
                yield Frame(index, float((pts - first_pts) * tb), frame, rotation or 0, size, scalers)
                index += 1
                stats.frames = index
        if index == 0:
            raise MediaDecodeError(p, "video stream has no decodable frames (corrupt or truncated)")
        if stats.missing_pts:
            warn(f"{stats.missing_pts} frame(s) without a usable timestamp; their times continue "
                 f"from the previous frame at the nominal {float(rate):g} fps")
        declared, own = _declared_duration_s(container, stream)
        got = float((last_pts - first_pts + step) * tb)
        # A stream's own duration is tight; the container's may include a longer audio track.
        if own:
            slack = max(3 * float(step * tb), 0.02 * declared)
        else:
            slack = max(_TRUNCATION_SLACK_S, 0.05 * declared)
        if declared > 0 and declared - got > slack:
            warn(f"video ends at {got:.2f}s but the file declares {declared:.2f}s (truncated or damaged)")


def _set_loop_filter(stream, on: bool) -> None:
    """Off: FFmpeg skips the codec's in-loop deblocking filter (set before the first decode)."""
    if not on:
        stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}


def decode_cost(path: str | Path, frames: int = 24, budget_s: float = 0.2, loop_filter: bool = True) -> float:
    """CPU seconds one decoder thread spends per frame on this file (after its first frame, which
    as a key frame costs more), from its first `frames` frames or as many as `budget_s` of CPU
    time allows (at least 4); 0.0 when it cannot tell.

    Decoding costs 1 ms a frame at 360p H.264 and 40x that at 4K HEVC 10-bit, so how many threads
    the decoder should get depends on the file (ingest weighs it against the shot detector's cost).
    The budget keeps the measurement a small part of a title's ingest at 4K, where 24 frames
    took 1.7 s, while a few frames already tell 40 ms from 3 ms.
    """
    import time

    try:
        with open_container(check_readable(path)) as container:
            if not container.streams.video:
                return 0.0
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            _set_loop_filter(stream, loop_filter)  # as the decode it stands for (iter_frames)
            n, start = 0, None
            for frame in container.decode(stream):
                if n == 0:
                    start = time.thread_time()  # FFmpeg's one thread is this thread
                n += 1
                if n > frames or (n > 4 and time.thread_time() - start >= budget_s):
                    break
            return (time.thread_time() - start) / (n - 1) if start is not None and n > 1 else 0.0
    except (MediafmError, av.FFmpegError):
        return 0.0  # the real decode reports the problem with its context


def _declared_duration_s(container, stream) -> tuple[float, bool]:
    """(duration the file claims for the video, whether it is the video stream's own)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), True
    tag = stream.metadata.get("DURATION")  # Matroska/WebM keep per-stream durations as tags
    if tag:
        try:
            hh, mm, ss = tag.split(":")
            return int(hh) * 3600 + int(mm) * 60 + float(ss), True
        except ValueError:
            pass
    if container.duration is not None:
        return container.duration / av.time_base, False
    return 0.0, False


def first_video_pts_s(path: str | Path) -> float | None:
    """Container time (s) of the first video frame, or None without video; audio aligns to it."""
    with open_container(path) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        frame = _first_video_frame(container, stream)
        if frame is None or frame.pts is None:
            st = stream.start_time
            return float(st * stream.time_base) if st is not None else 0.0
        return float(frame.pts * stream.time_base)
