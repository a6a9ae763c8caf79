"""Film descriptors: a shot's loudness, sound, light, colour, motion and length as 17 numbers.

The learned encoders answer "what is shown and heard" (ImageNet classes, AudioSet events, words)
and are trained to ignore much of "how": an image classifier is made invariant to brightness and
colour casts, and the per-modality unit norm of the fused vector drops the audio embedding's
scale, the trace of loudness it keeps. How a shot is lit, how loud and busy its sound is, how much
its picture moves and how long it lasts are what the affective film-analysis literature reads
arousal and mood from (Hanjalic & Xu 2005: motion, cutting rhythm and sound energy for arousal;
Wang & Cheong 2006: lighting key, colour energy, motion and audio statistics for a scene's mood;
Rasheed et al. 2005: shot length, motion and lighting key for genre). This module computes those
classic per-shot statistics, fixed functions of the waveform, the shot's sampled frames and its
length: the same on any catalog, nothing learned, no weights to install.

Each descriptor is centred and scaled by fixed constants, round figures near the median and the
spread (16th to 84th percentile) of the descriptor over the 27 shots of the real clips in
tests/media (`montage.mp4`, Big Buck Bunny, `wannaworktogether.mp4`, `monster.mp4`), then clipped to +-4, so that the block is near zero for a typical
shot and no single statistic dominates its direction once the block is unit-normalised (fusion).
Absent audio or video leaves its part at 0 (typical), as a missing modality is a zero block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mediafm.types import DESCRIPTORS

AUDIO_NAMES = ("loudness_db", "loudness_spread_db", "loud_db", "quiet_db", "loudness_change_db",
               "spectral_centroid", "spectral_flux", "zero_crossing_rate")
VIDEO_NAMES = ("lighting_key", "contrast", "saturation", "colourfulness", "motion", "log_motion",
               "edge_density", "colour_change")
NAMES: tuple[str, ...] = (*AUDIO_NAMES, *VIDEO_NAMES, "log_duration")
DIM = len(NAMES)
VERSION = "1"
BLOCK = DESCRIPTORS  # its feature column and its entry in a store's encoder record

# (centre, scale) per descriptor, in NAMES order; see the module docstring.
_NORM = np.array([
    (-40.0, 12.0), (8.0, 6.0), (-24.0, 13.0), (-46.0, 14.0), (2.6, 1.0),  # loudness (dBFS, dB)
    (7.2, 0.4), (1.0, 0.2), (0.1, 0.08),  # log centroid (ln Hz), log-spectral flux, zero crossings
    (0.45, 0.1), (0.15, 0.05), (0.35, 0.25), (0.2, 0.1),  # luma, luma std, saturation, colourfulness
    (0.1, 0.05), (-2.3, 0.5), (0.075, 0.03), (0.035, 0.05),  # motion, its log, edges, colour change
    (2.0, 0.5),  # ln seconds
], np.float32)

_RATE = 16_000
_WIN, _HOP = 400, 160  # 25 ms Hann windows every 10 ms
_FLOOR_DB = -100.0  # digital silence
_SIDE = 56  # frames are averaged down to about this many pixels a side


def audio_descriptors(wave: np.ndarray | None, rate: int = _RATE) -> np.ndarray:
    """float32 mono [-1, 1] waveform -> the 8 raw audio statistics (AUDIO_NAMES); NaN when absent."""
    out = np.full(len(AUDIO_NAMES), np.nan, np.float32)
    if wave is None:
        return out
    x = np.asarray(wave, np.float32).reshape(-1)
    win, hop = max(16, _WIN * rate // _RATE), max(8, _HOP * rate // _RATE)
    if len(x) < win:  # shorter than one window: one zero-padded window
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n] * np.hanning(win).astype(np.float32)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = np.maximum(20 * np.log10(np.maximum(rms, 1e-12)), _FLOOR_DB)
    spec = np.abs(np.fft.rfft(frames, axis=1)) + 1e-7
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    centroid = float(np.sum(spec.sum(0) * freqs) / np.sum(spec))
    log_spec = np.log(spec)
    flux = float(np.sqrt(np.mean(np.diff(log_spec, axis=0) ** 2))) if n > 1 else 0.0
    signs = np.signbit(frames)
    zcr = float(np.mean(signs[:, 1:] != signs[:, :-1]))
    change = float(np.std(np.diff(db))) if n > 2 else 0.0
    out[:] = (db.mean(), db.std(), np.percentile(db, 90), np.percentile(db, 10), change,
              np.log(max(centroid, 1.0)), flux, zcr)
    return out


def _downsample(frames: np.ndarray) -> np.ndarray:
    """uint8 [K, H, W, 3] -> float32 [K, h, w, 3] in [0, 1], block means of about _SIDE px a side."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"frames must be [K, H, W, 3], got shape {f.shape}")
    k, h, w, _ = f.shape
    s = max(1, min(h, w) // _SIDE)
    f = f[:, : h - h % s, : w - w % s].astype(np.float32) / 255.0
    return f.reshape(k, f.shape[1] // s, s, f.shape[2] // s, s, 3).mean(axis=(2, 4))


def video_descriptors(frames: np.ndarray | None) -> np.ndarray:
    """uint8 [K, H, W, 3] sampled frames of one shot -> the 8 raw picture statistics (VIDEO_NAMES);
    NaN when absent. Motion and colour change compare consecutive sampled frames (0 for K = 1)."""
    out = np.full(len(VIDEO_NAMES), np.nan, np.float32)
    if frames is None or len(frames) == 0:
        return out
    f = _downsample(frames)
    luma = f @ np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601
    hi, lo = f.max(-1), f.min(-1)
    saturation = (hi - lo) / np.maximum(hi, 1e-3)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    # Hasler & Suesstrunk's colourfulness: spread plus 0.3 x mean of the opponent channels.
    colourful = (np.hypot(rg.std(axis=(1, 2)), yb.std(axis=(1, 2)))
                 + 0.3 * np.hypot(rg.mean(axis=(1, 2)), yb.mean(axis=(1, 2))))
    motion = float(np.abs(np.diff(luma, axis=0)).mean()) if len(f) > 1 else 0.0
    colour_change = float(np.abs(np.diff(f.mean(axis=(1, 2)), axis=0)).mean()) if len(f) > 1 else 0.0
    edges = float(np.abs(np.diff(luma, axis=1)).mean() + np.abs(np.diff(luma, axis=2)).mean())
    out[:] = (luma.mean(), luma.std(axis=(1, 2)).mean(), saturation.mean(), colourful.mean(), motion,
              np.log(motion + 1e-3), edges, colour_change)
    return out


def normalise(raw: np.ndarray) -> np.ndarray:
    """[N, DIM] raw descriptors -> centred, scaled and clipped to +-4; NaN (absent) -> 0."""
    z = (np.asarray(raw, np.float32) - _NORM[:, 0]) / _NORM[:, 1]
    return np.clip(np.nan_to_num(z, nan=0.0), -4.0, 4.0).astype(np.float32)


def shot_descriptors(waves: Sequence[np.ndarray | None], frames: Sequence[np.ndarray | None],
                     durations: Sequence[float], rate: int = _RATE) -> np.ndarray:
    """One shot per item: waveform (or None), sampled frames (or None), length in seconds ->
    float32 [N, DIM], normalised (`normalise`)."""
    if not len(waves) == len(frames) == len(durations):
        raise ValueError(f"{len(waves)} waveforms, {len(frames)} frame sets and {len(durations)} durations")
    raw = np.empty((len(waves), DIM), np.float32)
    for i, (w, f, d) in enumerate(zip(waves, frames, durations)):
        raw[i, : len(AUDIO_NAMES)] = audio_descriptors(w, rate)
        raw[i, len(AUDIO_NAMES): -1] = video_descriptors(f)
        raw[i, -1] = np.log(max(float(d), 0.01))
    return normalise(raw)
