"""Audio-only titles: shots by silence or fixed windows."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.errors import ConfigError
from mediafm.shots.audio import AudioSegmentConfig, segment_audio
from mediafm_testing.media import tone

RATE = 16_000


def _phrases(lengths, pause_s=0.5):
    parts, cuts, t = [], [], 0.0
    for i, n in enumerate(lengths):
        parts += [tone(220 + 40 * i, n, RATE), np.zeros(int(pause_s * RATE), np.float32)]
        t += n + pause_s
        cuts.append(t - pause_s / 2)  # the middle of each pause
    return np.concatenate(parts), cuts[:-1]


def _tiles(shots, total):
    assert shots[0].start_s == 0 and shots[-1].end_s == pytest.approx(total)
    assert all(a.end_s == b.start_s for a, b in zip(shots, shots[1:]))
    assert all(s.start_frame == s.end_frame == -1 for s in shots)
    assert [s.index for s in shots] == list(range(len(shots)))


def test_silence_cuts_in_pauses():
    x, pauses = _phrases([7, 9, 6, 8, 12, 5])
    shots = segment_audio(x, RATE)
    _tiles(shots, len(x) / RATE)
    for s in shots[1:]:
        assert min(abs(s.start_s - p) for p in pauses) < 0.05  # every cut sits in a pause
    assert all(4.0 <= s.duration_s <= 20.0 for s in shots)


def test_no_pause_falls_back_to_windows():
    x = tone(300, 45.0, RATE)
    shots = segment_audio(x, RATE)
    _tiles(shots, 45.0)
    assert [round(s.start_s, 3) for s in shots[:3]] == [0.0, 10.0, 20.0]
    assert all(s.duration_s <= 20.0 for s in shots)


def test_fixed_windows_and_int16():
    x, _ = _phrases([7, 9, 6, 8])
    pcm = np.round(x * 20000).astype(np.int16)
    shots = segment_audio(pcm, RATE, AudioSegmentConfig(mode="window", window_s=10.0))
    _tiles(shots, len(x) / RATE)
    assert [s.start_s for s in shots] == [0.0, 10.0, 20.0]  # 32 s: the last window absorbs 2 s


def test_ingest_config_window_is_honoured():
    class Cfg:  # what the ingest worker passes: an object with audio_window_s
        audio_window_s = 5.0

    shots = segment_audio(tone(300, 30.0, RATE), RATE, Cfg())
    assert [s.start_s for s in shots[:3]] == [0.0, 5.0, 10.0]


def test_empty_and_bad_config():
    assert segment_audio(np.zeros(0, np.float32), RATE) == []
    with pytest.raises(ConfigError):
        AudioSegmentConfig(mode="energy")
    with pytest.raises(ConfigError):
        AudioSegmentConfig(min_s=30.0)
