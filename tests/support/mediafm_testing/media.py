"""Write small media files with known content for the tests.

Everything is written with PyAV (FFmpeg in the wheel), so the files exercise the same decoders
as real titles. Shots have known cut frames, audio is a known signal, subtitles are known cues.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pysubs2

from mediafm.types import Cue

# Video/audio encoder per container suffix. The PyAV wheel has no Theora/Vorbis encoders, so
# .ogv gets VP8 + Opus (both legal in Ogg). AVI gets MPEG-4 Part 2 + PCM: with MP3 or AAC, FFmpeg's
# AVI muxer shifts video timestamps after the first frame by the audio encoder's priming delay.
VIDEO_CODECS = {
    ".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".ts": "libx264",
    ".webm": "libvpx", ".ogv": "libvpx", ".avi": "mpeg4",
}
AUDIO_CODECS = {
    ".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".ts": "aac", ".m4a": "aac",
    ".webm": "libopus", ".ogv": "libopus", ".ogg": "libopus", ".opus": "libopus",
    ".avi": "pcm_s16le", ".mp3": "libmp3lame", ".wav": "pcm_s16le", ".flac": "flac",
}
# Text subtitle codec per container for `write_video(..., subtitles=...)`.
SUBTITLE_CODECS = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".mkv": "subrip"}
# Muxers that need an explicit format name (the suffix alone is ambiguous or unknown to FFmpeg).
_FORMATS = {".ogv": "ogg", ".opus": "ogg", ".m4a": "mp4", ".ts": "mpegts"}

# Small, fast encodes: test media only needs to be decodable and roughly faithful.
DEFAULT_CRF = 23
_OPUS_RATE = 48_000  # libopus only accepts 8/12/16/24/48 kHz; 48k is the Ogg/WebM norm


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction = 25,
    *,
    pts_s: Sequence[float] | None = None,
    audio: np.ndarray | None = None,
    audio_rate: int = 16_000,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    audio_offset_s: float = 0.0,
    rotation: int = 0,
    subtitles: Sequence[Cue] | None = None,
    faststart: bool = False,
) -> Path:
    """Encode RGB uint8 frames (and optional mono float audio, subtitles) into `path`.

    Args:
        path: output file; the suffix picks the container and default codecs.
        frames: iterable of [H, W, 3] uint8 RGB arrays (all the same size, even width/height).
        fps: constant frame rate, used when `pts_s` is None.
        pts_s: presentation time of every frame in seconds (variable frame rate); frame i gets
            `pts_s[i]`, rounded to a 1/90000 s time base.
        audio: mono float32 samples in [-1, 1] at `audio_rate`, starting at time 0.
        audio_offset_s: start of the audio relative to the first video frame (container
            timestamps): > 0 audio starts later, < 0 audio starts earlier (video is delayed).
        rotation: clockwise display rotation stored in the container's display matrix.
        subtitles: cues muxed as a text subtitle stream (mp4/mov: mov_text, mkv: subrip).
        faststart: mp4/mov only: index (moov) at the front, as web video is served; a cut-off
            copy of such a file still opens.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    vcodec = codec or VIDEO_CODECS.get(suffix, "libx264")
    fps_q = Fraction(fps).limit_denominator(1001 * 1000)
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format=_FORMATS.get(suffix), options=options) as out:
        vs = out.add_stream(vcodec, rate=fps_q)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p"
        if pts_s is not None:
            vs.codec_context.time_base = Fraction(1, 90_000)
            vs.time_base = Fraction(1, 90_000)
        else:
            vs.codec_context.time_base = 1 / fps_q
        if vcodec == "libx264":
            vs.options = {"crf": str(crf), "preset": "veryfast"}
        elif vcodec.startswith("libvpx"):
            vs.bit_rate = 1_000_000
            # libvpx's default "good" deadline is ~10x slower; test media does not need it.
            vs.options = {"deadline": "realtime", "cpu-used": "8"}
        elif vcodec == "mpeg4":
            vs.options = {"qscale": "4"}
            vs.codec_context.qscale = 4
        if rotation % 360:
            vs.set_display_rotation(-(rotation % 360))  # PyAV takes counter-clockwise degrees
        astream = None
        if audio is not None:
            astream = _add_audio_stream(out, suffix, audio_rate)
        sstream = None
        if subtitles:
            # A mux-only stream: subtitle encoders need an ASS header we do not have, and the
            # packets below are already in the codec's wire format.
            scodec = SUBTITLE_CODECS.get(suffix, "subrip")
            sstream = out.add_mux_stream(scodec)
            sstream.time_base = Fraction(1, 1000)

        vtb = vs.codec_context.time_base
        video_shift = round(max(0.0, -audio_offset_s) / vtb)  # in video time-base units

        def frames_with_pts() -> Iterator[tuple[np.ndarray, int]]:
            for i, img in enumerate(_chain(first, it)):
                if pts_s is not None:
                    yield img, round(pts_s[i] * 90_000) + video_shift
                else:
                    yield img, i + video_shift

        # Audio is muxed interleaved with the video (a little ahead of it): some muxers (AVI)
        # write broken indexes when one stream arrives entirely after the other.
        afr = _audio_frames(astream, audio, audio_rate, max(0.0, audio_offset_s)) if astream else []
        aframes = iter(afr)
        pending = next(aframes, None)
        for img, pts in frames_with_pts():
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.uint8), format="rgb24")
            vf.pts = pts
            vf.time_base = vtb
            out.mux(vs.encode(vf))
            while pending is not None and pending.pts * pending.time_base <= pts * vtb + Fraction(1, 2):
                out.mux(astream.encode(pending))
                pending = next(aframes, None)
        out.mux(vs.encode(None))
        while pending is not None:
            out.mux(astream.encode(pending))
            pending = next(aframes, None)
        if astream is not None:
            out.mux(astream.encode(None))
        if sstream is not None:
            _mux_subtitles(out, sstream, scodec, subtitles)
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _add_audio_stream(out, suffix: str, rate: int):
    acodec = AUDIO_CODECS.get(suffix, "aac")
    if acodec == "libopus":
        rate = _OPUS_RATE
    stream = out.add_stream(acodec, rate=rate)
    stream.layout = "mono"
    return stream


def _audio_frames(stream, audio: np.ndarray, rate: int, start_s: float = 0.0) -> list[av.AudioFrame]:
    """Float mono samples resampled to the encoder's format, rate and frame size, from time 0."""
    samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
    src = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
    src.sample_rate = rate
    src.pts = 0
    src.time_base = Fraction(1, rate)
    cc = stream.codec_context
    resampler = av.AudioResampler(format=cc.format.name, layout="mono", rate=cc.sample_rate,
                                  frame_size=cc.frame_size or None)
    frames = [*resampler.resample(src), *resampler.resample(None)]
    pts = round(start_s * cc.sample_rate)
    for frame in frames:
        frame.pts = pts
        frame.time_base = Fraction(1, cc.sample_rate)
        pts += frame.samples
    return frames


def _mux_subtitles(out, stream, codec: str, cues: Sequence[Cue]) -> None:
    """Mux text cues as packets; mov_text/subrip packets carry plain UTF-8 cue text."""
    tb = Fraction(1, 1000)
    mov_text = codec == "mov_text"
    for cue in sorted(cues, key=lambda c: c.start_s):
        payload = cue.text.encode("utf-8")
        if mov_text:
            payload = len(payload).to_bytes(2, "big") + payload  # tx3g: 16-bit length prefix
        pkt = av.Packet(payload)
        pkt.stream = stream
        pkt.time_base = tb
        pkt.pts = pkt.dts = round(cue.start_s * 1000)
        pkt.duration = max(1, round((cue.end_s - cue.start_s) * 1000))
        out.mux(pkt)


def write_audio(path: str | Path, audio: np.ndarray, rate: int = 16_000) -> Path:
    """Write an audio-only file (wav, flac, mp3, m4a, ogg/opus) from mono float32 samples."""
    path = Path(path)
    suffix = path.suffix.lower()
    with av.open(str(path), mode="w", format=_FORMATS.get(suffix)) as out:
        stream = _add_audio_stream(out, suffix, rate)
        for frame in _audio_frames(stream, audio, rate):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def tone(freq: float, seconds: float, rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone as float32 mono samples."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def color_shots(
    cut_frames: Sequence[int], n_frames: int, size: tuple[int, int] = (160, 96), seed: int = 0
) -> Iterator[np.ndarray]:
    """Frames of visually distinct shots with hard cuts at `cut_frames` (first frame of a shot).

    Each shot has its own hue and its own textured pattern (blurred noise) that drifts a pixel
    or two per frame, plus faint per-frame grain: real-looking motion inside a shot, so
    detectors are not handed the trivial case of perfectly static frames.

    Args:
        cut_frames: 0-based indices of the first frame of every shot after the first.
        n_frames: total number of frames.
        size: (width, height); keep both even for yuv420p.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    starts = [0, *sorted(c for c in cut_frames if 0 < c < n_frames)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for s, start in enumerate(starts):
        end = starts[s + 1] if s + 1 < len(starts) else n_frames
        # Golden-ratio hue steps keep neighbouring shots far apart in colour.
        hue = (s * 0.618034) % 1.0
        base = np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.55 + 0.3 * (s % 2)), dtype=np.float32) * 255
        # A low-frequency texture twice the frame size, so it can drift without wrapping.
        coarse = rng.random((h // 8 + 4, w // 8 + 4, 1), dtype=np.float32)
        texture = np.kron(coarse, np.ones((8, 8, 1), dtype=np.float32)) * 80 - 40
        fx, fy = rng.uniform(0.02, 0.08, size=2)
        stripes = (20 * np.sin(xx * fx + yy * fy))[..., None]
        dx, dy = rng.choice([-1, 1], size=2)
        for k in range(end - start):
            # Back-and-forth drift of one pixel per frame (a wrap-around would jump 15 pixels).
            tri = k % 32 if k % 32 <= 16 else 32 - k % 32
            ox, oy = (tri if dx > 0 else 16 - tri), (tri if dy > 0 else 16 - tri)
            img = base + texture[oy : oy + h, ox : ox + w] + stripes
            img += rng.normal(0, 3, size=(h, w, 1)).astype(np.float32)
            yield np.clip(img, 0, 255).astype(np.uint8)


def write_subtitles(
    path: str | Path, cues: Iterable[Cue], format: str | None = None, encoding: str = "utf-8"
) -> Path:
    """Write cues as a subtitle file with pysubs2 (srt, vtt, ass, ssa; from the suffix by default).

    `encoding` is any Python codec: "utf-8-sig" writes a BOM, "utf-16" a UTF-16 BOM file.
    """
    path = Path(path)
    subs = pysubs2.SSAFile()
    for c in cues:
        subs.append(pysubs2.SSAEvent(start=round(c.start_s * 1000), end=round(c.end_s * 1000), text=c.text))
    fmt = format or {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}.get(path.suffix.lower())
    subs.save(str(path), encoding=encoding, format_=fmt)
    return path
