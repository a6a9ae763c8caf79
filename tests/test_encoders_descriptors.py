"""Film descriptors (`mediafm.encoders.descriptors`): each statistic moves with what it measures."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.encoders import descriptors as d

RATE = 16_000


def _tone(seconds: float, amplitude: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _a(name: str, raw: np.ndarray) -> float:
    return float(raw[d.AUDIO_NAMES.index(name)])


def _v(name: str, raw: np.ndarray) -> float:
    return float(raw[d.VIDEO_NAMES.index(name)])


def test_loudness_follows_amplitude_and_silence_sits_at_the_floor():
    quiet, loud = d.audio_descriptors(_tone(2, 0.01)), d.audio_descriptors(_tone(2, 0.5))
    assert _a("loudness_db", loud) - _a("loudness_db", quiet) == pytest.approx(20 * np.log10(50), abs=0.1)
    assert _a("loudness_spread_db", loud) < 0.5  # a steady tone
    silence = d.audio_descriptors(np.zeros(RATE, np.float32))
    assert _a("loudness_db", silence) == -100.0 and np.isfinite(silence).all()


def test_pitch_noise_and_dynamics_are_told_apart():
    low, high = d.audio_descriptors(_tone(1, 0.3, 200.0)), d.audio_descriptors(_tone(1, 0.3, 3000.0))
    assert _a("spectral_centroid", high) > _a("spectral_centroid", low)
    assert _a("zero_crossing_rate", high) > _a("zero_crossing_rate", low)
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    assert _a("spectral_flux", d.audio_descriptors(noise)) > _a("spectral_flux", low)
    bursts = _tone(1, 0.3) * (np.arange(RATE) // 1600 % 2)  # 0.1 s on, 0.1 s off
    assert _a("loudness_change_db", d.audio_descriptors(bursts)) > _a("loudness_change_db", low) + 5


def test_short_and_absent_audio():
    assert np.isfinite(d.audio_descriptors(_tone(0.01, 0.3))).all()  # shorter than one window
    assert np.isnan(d.audio_descriptors(None)).all()


def _frames(k: int, value: float, size: int = 224) -> np.ndarray:
    return np.full((k, size, size, 3), int(value * 255), np.uint8)


def test_light_colour_and_edges():
    dark, bright = d.video_descriptors(_frames(3, 0.1)), d.video_descriptors(_frames(3, 0.9))
    assert _v("lighting_key", bright) > _v("lighting_key", dark)
    assert _v("saturation", bright) == 0 and _v("colourfulness", bright) == 0 and _v("edge_density", bright) == 0
    red = _frames(3, 0.2)
    red[..., 0] = 230
    assert _v("saturation", d.video_descriptors(red)) == pytest.approx((230 - 51) / 230, abs=1e-3) and _v("colourfulness", d.video_descriptors(red)) > 0.2
    stripes = _frames(3, 0.0)
    stripes[:, :, ::16] = 255
    assert _v("edge_density", d.video_descriptors(stripes)) > 0.05
    assert _v("contrast", d.video_descriptors(stripes)) > _v("contrast", bright)


def test_motion_compares_consecutive_frames():
    rng = np.random.default_rng(1)
    still = np.repeat(rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8), 3, axis=0)
    moving = np.stack([np.roll(still[0], 20 * i, axis=1) for i in range(3)])
    assert _v("motion", d.video_descriptors(still)) == 0
    assert _v("motion", d.video_descriptors(moving)) > 0.05
    assert _v("log_motion", d.video_descriptors(moving)) > _v("log_motion", d.video_descriptors(still))
    fade = np.stack([_frames(1, v)[0] for v in (0.2, 0.5, 0.8)])
    assert _v("colour_change", d.video_descriptors(fade)) > 0.2
    assert _v("motion", d.video_descriptors(still[:1])) == 0  # one frame: nothing to compare
    # Any frame size, not only the store's 224 x 224.
    assert np.isfinite(d.video_descriptors(rng.integers(0, 256, (2, 90, 161, 3), dtype=np.uint8))).all()
    with pytest.raises(ValueError, match=r"\[K, H, W, 3\]"):
        d.video_descriptors(np.zeros((224, 224, 3), np.uint8))


def test_shot_descriptors_are_normalised_and_absent_parts_are_zero():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    out = d.shot_descriptors([_tone(2, 0.2), None, np.zeros(0, np.float32)], [frames, frames, None], [2.0, 3.5, 0.0])
    assert out.shape == (3, d.DIM) and out.dtype == np.float32 and np.abs(out).max() <= 4.0
    n_audio, n_video = len(d.AUDIO_NAMES), len(d.VIDEO_NAMES)
    assert np.all(out[1, :n_audio] == 0) and np.all(out[2, n_audio:n_audio + n_video] == 0)
    assert out[1, -1] > out[0, -1]  # longer shot
    extreme = d.normalise(np.full((1, d.DIM), 1e6, np.float32))
    assert np.all(extreme == 4.0)
    with pytest.raises(ValueError, match="durations"):
        d.shot_descriptors([None], [None, None], [1.0])
