"""Shots for audio-only titles (podcasts, audiobooks): fixed windows or cuts in silences.

Silence mode cuts at pauses so a shot holds whole phrases: it measures RMS energy in short hops,
finds runs quieter than `silence_db` below the title's loud level, and between `min_s` and
`max_s` after the previous cut takes the longest such pause (ties: nearest `window_s`); with no
pause in reach it falls back to a cut at `window_s`. Energy is computed chunk by chunk, so a
memory-mapped multi-hour title is never loaded whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mediafm.errors import ConfigError
from mediafm.types import Shot

_CHUNK_S = 60.0  # seconds of samples converted to float at a time


@dataclass(frozen=True)
class AudioSegmentConfig:
    """How audio-only titles become shots."""

    mode: str = "silence"  # "silence" (cut in pauses) or "window" (fixed windows)
    window_s: float = 10.0  # target shot length; the fixed window in "window" mode
    min_s: float = 4.0  # silence mode: shortest shot
    max_s: float = 20.0  # silence mode: longest shot (a cut is forced at window_s when no pause is in reach)
    hop_s: float = 0.025  # energy frame
    silence_db: float = 35.0  # a hop is silent when its RMS is this far below the title's 95th percentile
    min_silence_s: float = 0.2  # shortest pause that counts

    def __post_init__(self) -> None:
        if self.mode not in ("silence", "window"):
            raise ConfigError(None, f"audio segmentation mode must be 'silence' or 'window', not {self.mode!r}")
        if not 0 < self.min_s <= self.window_s <= self.max_s:
            raise ConfigError(None, "audio segmentation needs 0 < min_s <= window_s <= max_s")


def _as_config(config: object | None) -> AudioSegmentConfig:
    if config is None:
        return AudioSegmentConfig()
    if isinstance(config, AudioSegmentConfig):
        return config
    # An ingest config: take its window length, keep our other defaults.
    window = float(getattr(config, "audio_window_s", AudioSegmentConfig.window_s))
    return AudioSegmentConfig(window_s=window, min_s=min(AudioSegmentConfig.min_s, window),
                              max_s=max(AudioSegmentConfig.max_s, window))


def hop_energy_db(samples: np.ndarray, rate: int, hop_s: float) -> np.ndarray:
    """RMS level (dBFS) of consecutive `hop_s` frames; int16 input is scaled by 1/32768."""
    hop = max(1, int(round(hop_s * rate)))
    chunk = max(hop, int(_CHUNK_S * rate) // hop * hop)
    scale = 1.0 / 32768.0 if np.issubdtype(samples.dtype, np.integer) else 1.0
    out = []
    for s in range(0, len(samples), chunk):
        x = np.asarray(samples[s:s + chunk], dtype=np.float32).reshape(-1) * scale
        n = len(x) // hop * hop
        if n:
            out.append(np.sqrt(np.mean(x[:n].reshape(-1, hop) ** 2, axis=1)))
        if len(x) > n:  # a partial last hop
            out.append(np.sqrt(np.mean(x[n:] ** 2, keepdims=True)))
    rms = np.concatenate(out) if out else np.zeros(0, np.float32)
    return 20 * np.log10(np.maximum(rms, 1e-6))


def _silence_midpoints(db: np.ndarray, cfg: AudioSegmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(middle time, length) in seconds of each pause."""
    if len(db) == 0:
        return np.zeros(0), np.zeros(0)
    quiet = db < np.percentile(db, 95) - cfg.silence_db
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    length = (ends - starts) * cfg.hop_s
    keep = length >= cfg.min_silence_s
    return (starts[keep] + ends[keep]) / 2 * cfg.hop_s, length[keep]


def _window_cuts(total: float, window: float) -> list[float]:
    n = max(1, int(round(total / window)))  # the last shot absorbs a remainder under half a window
    return [i * window for i in range(1, n)]


def segment_audio(samples: np.ndarray, rate: int, config: object | None = None) -> list[Shot]:
    """Split an audio-only title into shots that tile it.

    Args:
        samples: mono samples (float in [-1, 1], or int16), e.g. a memory-mapped `audio.npy`.
        rate: sample rate in Hz.
        config: AudioSegmentConfig (an object with `audio_window_s`, such as IngestConfig, sets
            the window and keeps the other defaults).

    Returns:
        Shots with start_frame = end_frame = -1, times in seconds from the first sample.
    """
    cfg = _as_config(config)
    total = len(samples) / rate
    if total <= 0:
        return []
    if cfg.mode == "window":
        cuts = _window_cuts(total, cfg.window_s)
    else:
        mids, lengths = _silence_midpoints(hop_energy_db(samples, rate, cfg.hop_s), cfg)
        cuts, start = [], 0.0
        while total - start > cfg.max_s:
            ok = (mids >= start + cfg.min_s) & (mids <= start + cfg.max_s)
            if ok.any():
                idx = np.flatnonzero(ok)
                # Longest pause first; among equals, the one nearest the target length.
                best = idx[np.lexsort((np.abs(mids[idx] - start - cfg.window_s), -lengths[idx]))[0]]
                start = float(mids[best])
            else:
                start = start + cfg.window_s
            cuts.append(start)
        # The tail: one more cut in a pause when it leaves two shots of at least min_s.
        ok = (mids >= start + cfg.min_s) & (mids <= total - cfg.min_s) & (total - start > cfg.window_s)
        if ok.any():
            idx = np.flatnonzero(ok)
            cuts.append(float(mids[idx[np.argmax(lengths[idx])]]))
    edges = [0.0, *cuts, total]
    return [Shot(i, -1, -1, float(edges[i]), float(edges[i + 1])) for i in range(len(edges) - 1)]
