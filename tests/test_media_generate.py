"""The test-media writer: shots are distinct at known cuts and alive inside; tones are tones."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.types import Cue
from mediafm_testing.media import color_shots, tone, write_subtitles


def test_color_shots_have_cuts_exactly_at_the_given_frames():
    cuts = [7, 19, 20, 33]  # includes a one-frame shot
    frames = np.stack(list(color_shots(cuts, 40, (64, 48)))).astype(np.float32)
    assert frames.shape == (40, 48, 64, 3) and frames.dtype == np.float32
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    detected = sorted((np.argsort(diffs)[-len(cuts) :] + 1).tolist())
    assert detected == cuts
    inner = np.delete(diffs, [c - 1 for c in cuts])
    assert inner.min() > 0.5  # motion and grain inside shots: never static
    assert diffs[[c - 1 for c in cuts]].min() > 4 * inner.max()


def test_color_shots_deterministic_and_sized():
    a = list(color_shots([3], 6, (32, 16), seed=4))
    b = list(color_shots([3], 6, (32, 16), seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (16, 32, 3) and a[0].dtype == np.uint8
    assert len(list(color_shots([], 5))) == 5


def test_tone():
    x = tone(250, 2.0, rate=8000, amplitude=0.3)
    assert x.dtype == np.float32 and len(x) == 16000
    assert np.abs(x).max() == pytest.approx(0.3, abs=1e-3)
    assert np.argmax(np.abs(np.fft.rfft(x))) * 8000 / len(x) == pytest.approx(250)


def test_write_subtitles_encodings(tmp_path):
    path = write_subtitles(tmp_path / "a.srt", [Cue(1.0, 2.5, "héllo")], encoding="utf-16")
    raw = path.read_bytes()
    assert raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert "00:00:01,000 --> 00:00:02,500" in raw.decode("utf-16")
