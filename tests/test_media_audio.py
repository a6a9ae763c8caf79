"""Audio decoding: 16 kHz mono, length, frequency, stream alignment, chunking, errors."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.errors import MediaDecodeError, MissingStreamError
from mediafm.media.audio import iter_audio, load_audio
from mediafm_testing.media import color_shots, tone, write_audio, write_video

RATE = 16_000


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("audio")


def peak_hz(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def onset_s(x: np.ndarray, rate: int = RATE) -> float:
    return float(np.argmax(np.abs(x) > 0.1) / rate)


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".m4a", ".ogg"])
def test_audio_only_files_resample_to_16k_mono(media, ext):
    # Written at 22.05 kHz (48 kHz for Opus), read back at 16 kHz.
    path = write_audio(media / f"tone{ext}", tone(1000, 2.0, rate=22_050), rate=22_050)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    # Lossy codecs pad to whole frames (AAC: 1024 samples at the source rate).
    assert 2.0 * RATE <= len(x) <= 2.0 * RATE + 0.05 * RATE
    assert peak_hz(x[: 2 * RATE]) == pytest.approx(1000, abs=2)
    assert 0.4 < np.abs(x).max() < 0.6


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".avi", ".ts", ".ogv"])
def test_video_containers_audio(media, ext):
    path = write_video(media / f"av{ext}", color_shots([10], 40), audio=tone(440, 1.6))
    x = load_audio(path)
    assert len(x) >= 1.6 * RATE - 10
    assert peak_hz(x[: int(1.6 * RATE)]) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("offset", [0.5, -0.4])
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".ts"])
def test_audio_is_aligned_to_first_video_frame(media, ext, offset):
    # A click-free step: 1 s of silence, then a tone. Written with the audio stream starting
    # `offset` seconds after (or before) the video, the tone must land at 1 + offset on the
    # title's time line, whose 0 is the first video frame.
    sig = np.concatenate([np.zeros(RATE, np.float32), tone(440, 1.0)])
    path = write_video(media / f"off{offset}{ext}", color_shots([], 75), audio=sig, audio_offset_s=offset)
    assert onset_s(load_audio(path)) == pytest.approx(1.0 + offset, abs=0.005)


def test_chunks_are_fixed_length_and_bounded(media):
    path = write_audio(media / "long.flac", tone(300, 7.3))
    chunks = list(iter_audio(path, chunk_s=2.0))
    assert [len(c) for c in chunks[:-1]] == [2 * RATE] * 3
    assert sum(len(c) for c in chunks) == round(7.3 * RATE)
    assert np.allclose(np.concatenate(chunks), load_audio(path))


def test_other_rates(media):
    path = write_audio(media / "r.wav", tone(500, 1.0, rate=44_100), rate=44_100)
    x = load_audio(path, rate=8000)
    assert len(x) == 8000 and peak_hz(x, 8000) == pytest.approx(500, abs=2)


def test_stereo_downmix(shared_media):
    x = load_audio(shared_media / "originals" / "speech_jfk.flac")
    assert len(x) == 11 * RATE
    voiced = x[int(0.32 * RATE) : int(10.35 * RATE)]
    assert np.sqrt(np.mean(voiced**2)) > 0.01


def test_video_without_audio_raises_missing_stream(media):
    path = write_video(media / "silent.mp4", color_shots([], 10))
    with pytest.raises(MissingStreamError, match="no audio stream") as err:
        load_audio(path)
    assert "silent.mp4" in str(err.value)


def test_bad_file(media):
    bad = media / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(10))
    with pytest.raises(MediaDecodeError, match="bad.wav"):
        load_audio(bad)


def test_montage_audio_length_and_alignment(montage, montage_truth):
    x = load_audio(montage)
    n = montage_truth["duration_s"] * RATE
    assert n <= len(x) <= n + 2048  # AAC frame padding at the end
    # Each overlaid utterance must be audible where truth.json puts it.
    rms = lambda a, b: float(np.sqrt(np.mean(x[int(a * RATE) : int(b * RATE)] ** 2)))  # noqa: E731
    for sp in montage_truth["speech"]:
        assert rms(sp["start_s"], sp["end_s"]) > 0.02
