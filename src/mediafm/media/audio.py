"""Audio decoding: float32 mono at 16 kHz (or any rate), streamed in fixed-length chunks.

Time alignment: sample 0 of the output is time 0 of the title, which is the first video frame's
presentation time when the file has video (the same origin as `Frame.pts_s` and subtitle cues),
else the first audio frame. Start-time offsets between the streams are applied exactly:
audio that starts after the first video frame is preceded by silence; audio before it is dropped.
Gaps inside the audio stream (missing packets, discontinuous timestamps) longer than
`GAP_TOLERANCE_S` are filled with silence, so sample `i` is always at time `i / rate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from mediafm.errors import MediaDecodeError, MissingStreamError
from mediafm.media.decode import _reason, check_readable, first_video_pts_s, open_container

DEFAULT_RATE = 16_000
DEFAULT_CHUNK_S = 30.0
# Timestamp jitter below this is normal (frame-size rounding); larger gaps are filled with silence.
GAP_TOLERANCE_S = 0.05


def iter_audio(
    path: str | Path,
    rate: int = DEFAULT_RATE,
    chunk_s: float = DEFAULT_CHUNK_S,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Decode the first audio stream to mono float32 chunks of `chunk_s` seconds (last may be short).

    Args:
        path: any file FFmpeg reads with an audio stream (video or audio-only).
        rate: output sample rate in Hz.
        chunk_s: chunk length in seconds; memory stays bounded whatever the file's length.
        on_warning: called with a message for every skipped undecodable packet or filled gap.

    Raises:
        MediaDecodeError: unreadable file; MissingStreamError: no audio stream.
    """
    p = check_readable(path)
    chunk = max(1, round(chunk_s * rate))
    origin_s = first_video_pts_s(p)  # None for audio-only files

    def warn(msg: str) -> None:
        if on_warning is not None:
            on_warning(f"{p.name}: {msg}")

    with open_container(p) as container:
        if not container.streams.audio:
            raise MissingStreamError(p, "no audio stream")
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        buf = _ChunkBuffer(chunk)
        resampler = _new_resampler(rate)
        pos_s: float | None = None  # input time (s from origin) up to which audio has been fed
        drop = 0  # output samples still to drop (audio that starts before the first video frame)
        for frame in _decoded(container, stream, warn):
            if frame.pts is not None and frame.time_base is not None:
                start_s = float(frame.pts * frame.time_base)
                if origin_s is None:
                    origin_s = start_s
                start_s -= origin_s
                if pos_s is None:
                    pos_s = 0.0
                    if start_s < 0:
                        drop = round(-start_s * rate)
                    elif start_s > 0:
                        yield from buf.push(np.zeros(round(start_s * rate), np.float32))
                    pos_s = start_s
                elif start_s - pos_s > GAP_TOLERANCE_S:
                    # Flush what the resampler holds so the silence lands in the right place.
                    yield from buf.push_all(_flush(resampler))
                    resampler = _new_resampler(rate)
                    warn(f"audio gap of {start_s - pos_s:.3f}s at {pos_s:.3f}s filled with silence")
                    yield from buf.push(np.zeros(round((start_s - pos_s) * rate), np.float32))
                    pos_s = start_s
            elif pos_s is None:
                pos_s = 0.0
            pos_s += frame.samples / frame.sample_rate
            for out in resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1)
                if drop:
                    cut = min(drop, samples.size)
                    samples, drop = samples[cut:], drop - cut
                yield from buf.push(samples)
        yield from buf.push_all(_flush(resampler))
        if buf.total == 0 and buf.pending == 0:
            raise MediaDecodeError(p, "audio stream has no decodable samples (corrupt or truncated)")
        yield from buf.rest()


def load_audio(path: str | Path, rate: int = DEFAULT_RATE) -> np.ndarray:
    """The whole audio track as one float32 mono array (for short files; see iter_audio)."""
    parts = list(iter_audio(path, rate=rate))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _new_resampler(rate: int) -> av.AudioResampler:
    # Packed float, mono downmix (FFmpeg's standard matrix), any input rate/layout.
    return av.AudioResampler(format="flt", layout="mono", rate=rate)


def _flush(resampler: av.AudioResampler) -> list[np.ndarray]:
    return [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]


def _decoded(container, stream, warn) -> Iterator[av.AudioFrame]:
    """Decoded audio frames; undecodable packets are skipped with a warning."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as e:
            warn(f"audio demuxing stopped: {_reason(e)}")
            return
        if packet.is_corrupt:
            warn(f"corrupt audio packet at pts {packet.pts} skipped")
            continue
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            warn(f"undecodable audio packet at pts {packet.pts} skipped ({_reason(e)})")
            continue
        yield from frames


class _ChunkBuffer:
    """Collects sample arrays and hands out fixed-size chunks (bounded memory)."""

    def __init__(self, chunk: int):
        self.chunk = chunk
        self.parts: list[np.ndarray] = []
        self.pending = 0  # samples held
        self.total = 0  # samples handed out

    def push(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        if samples.size:
            self.parts.append(samples.astype(np.float32, copy=False))
            self.pending += samples.size
        while self.pending >= self.chunk:
            joined = np.concatenate(self.parts)
            out, rest = joined[: self.chunk], joined[self.chunk :]
            self.parts = [rest] if rest.size else []
            self.pending = rest.size
            self.total += out.size
            yield out

    def push_all(self, arrays: list[np.ndarray]) -> Iterator[np.ndarray]:
        for a in arrays:
            yield from self.push(a)

    def rest(self) -> Iterator[np.ndarray]:
        if self.pending:
            out = np.concatenate(self.parts)
            self.parts, self.pending = [], 0
            self.total += out.size
            yield out
