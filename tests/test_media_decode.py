"""Video decoding: exact PTS (CFR and VFR), rotation, containers, bad inputs, real media."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from mediafm.errors import MediaDecodeError, MissingStreamError
from mediafm.media.decode import DecodeStats, iter_frames, probe
from mediafm_testing.media import color_shots, tone, write_audio, write_video

CONTAINERS = [".mp4", ".mkv", ".webm", ".avi", ".ts", ".ogv", ".mov"]
SIZE = (96, 64)  # (width, height)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("decode")


@pytest.mark.parametrize("ext", CONTAINERS)
def test_cfr_timestamps_exact_in_every_container(media, ext):
    path = write_video(media / f"cfr{ext}", color_shots([10, 20], 30, SIZE), fps=25, audio=tone(440, 1.2))
    frames = list(iter_frames(path))
    assert [f.index for f in frames] == list(range(30))
    # Exact up to the container's time base (ogv/avi/webm store ms or frame ticks).
    assert np.allclose([f.pts_s for f in frames], np.arange(30) / 25, atol=1e-3)
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == SIZE
    assert info.duration_s == pytest.approx(1.2, abs=0.05)


def test_ntsc_rate_uses_pts_not_index(media):
    path = write_video(media / "ntsc.mp4", color_shots([5], 12, SIZE), fps=Fraction(30000, 1001))
    pts = [f.pts_s for f in iter_frames(path)]
    assert np.allclose(pts, np.arange(12) * 1001 / 30000, atol=1e-6)


def test_vfr_timestamps_are_the_written_ones(media):
    pts_s = [0.0, 0.04, 0.1, 0.13, 0.5, 0.52, 1.0, 1.7, 1.71, 2.0]
    for ext in (".mp4", ".mkv"):
        path = write_video(media / f"vfr{ext}", color_shots([4], len(pts_s), SIZE), pts_s=pts_s)
        got = [f.pts_s for f in iter_frames(path)]
        assert np.allclose(got, pts_s, atol=1e-3), (ext, got)
        # Index counts frames in presentation order, independent of time.
        assert [f.index for f in iter_frames(path)] == list(range(len(pts_s)))


def _marked_frames(n: int, w: int = 96, h: int = 64):
    for _ in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[: h // 4, : w // 4] = (255, 0, 0)  # red mark at the top-left corner
        yield img


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_applied(media, rotation):
    path = write_video(media / f"rot{rotation}.mp4", _marked_frames(3), rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((64, 96) if rotation in (90, 270) else (96, 64))
    frame = next(iter(iter_frames(path)))
    img = frame.rgb()
    assert img.shape == (info.height, info.width, 3)
    h, w = img.shape[:2]
    # Clockwise rotation moves the top-left corner to: 90 top-right, 180 bottom-right, 270 bottom-left.
    corners = {90: img[: h // 8, -w // 8 :], 180: img[-h // 8 :, -w // 8 :], 270: img[-h // 8 :, : w // 8]}
    corner = corners[rotation]
    assert corner[..., 0].mean() > 200 and corner[..., 1].mean() < 60
    assert frame.rgb(32, 48).shape == (48, 32, 3)
    assert frame.square(24).shape == (24, 24, 3)


def test_rgb_resize_and_square_crop(media):
    path = write_video(media / "sq.mp4", _marked_frames(2, 128, 64))
    frame = next(iter(iter_frames(path)))
    assert frame.rgb().shape == (64, 128, 3) and frame.rgb().dtype == np.uint8
    assert frame.rgb(40, 30).shape == (30, 40, 3)
    sq = frame.square(32)
    assert sq.shape == (32, 32, 3) and sq.dtype == np.uint8
    # Centre crop of a 2:1 frame drops the left quarter, where the red mark is.
    assert sq[..., 0].mean() < 100
    assert next(iter(iter_frames(path, size=(16, 8)))).image.shape == (8, 16, 3)


def test_shot_content_survives_encoding(media):
    path = write_video(media / "cuts.mp4", color_shots([8, 16], 24, SIZE))
    imgs = [f.rgb().astype(np.float32) for f in iter_frames(path)]
    diffs = [np.abs(imgs[i] - imgs[i - 1]).mean() for i in range(1, len(imgs))]
    cut_diffs = [diffs[7], diffs[15]]
    inner = [d for i, d in enumerate(diffs) if i not in (7, 15)]
    assert min(cut_diffs) > 3 * max(inner)


def test_audio_only_file_probe(media):
    path = write_audio(media / "a.flac", tone(300, 1.0))
    info = probe(path)
    assert not info.has_video and info.has_audio and info.duration_s == pytest.approx(1.0, abs=0.01)
    with pytest.raises(MissingStreamError, match="no video stream"):
        next(iter(iter_frames(path)))


# --- bad inputs: a typed error naming the file, never a raw PyAV error --------------------------


def _bad_inputs(media):
    good = write_video(media / "good.mp4", color_shots([5], 20, SIZE), audio=tone(440, 0.8))
    data = good.read_bytes()
    (media / "zero.mp4").write_bytes(b"")
    (media / "random.mp4").write_bytes(np.random.default_rng(0).bytes(40_000))
    (media / "text.mkv").write_text("this is a text file, not a video\n" * 50)
    (media / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return {
        "zero.mp4": "empty",
        "random.mp4": "not a readable media file",
        "text.mkv": "not a readable media file",
        "truncated.mp4": "truncated",
        "missing.mp4": "does not exist",
    }


@pytest.mark.parametrize("reader", ["probe", "iter_frames"])
def test_bad_inputs_raise_typed_errors_naming_the_file(media, reader):
    for name, problem in _bad_inputs(media).items():
        with pytest.raises(MediaDecodeError, match=problem) as err:
            if reader == "probe":
                probe(media / name)
            else:
                list(iter_frames(media / name))
        assert name in str(err.value) and err.value.path.endswith(name)
        assert not isinstance(err.value.__cause__, MediaDecodeError)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(media):
    path = write_video(media / "locked.mp4", color_shots([], 4, SIZE))
    path.chmod(0)
    try:
        with pytest.raises(MediaDecodeError, match="permission denied"):
            probe(path)
    finally:
        path.chmod(0o644)


def test_broken_symlink(media):
    link = media / "dangling.mkv"
    link.symlink_to(media / "nowhere.mkv")
    with pytest.raises(MediaDecodeError, match="broken symbolic link") as err:
        probe(link)
    assert "dangling.mkv" in str(err.value)


def test_directory_is_not_media(media):
    with pytest.raises(MediaDecodeError, match="directory"):
        probe(media)


def test_no_streams(media):
    path = media / "subs_only.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    with pytest.raises(MediaDecodeError):
        probe(path)


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_truncated_file_with_index_at_front_warns(media, ext):
    # Matroska and fast-start mp4 keep their headers at the front, so a cut-off file still opens:
    # frames up to the cut come out and the missing tail is reported.
    good = write_video(media / f"long{ext}", color_shots([30], 100, SIZE), faststart=True)
    data = good.read_bytes()
    cut = media / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    warnings: list[str] = []
    n = sum(1 for _ in iter_frames(cut, on_warning=warnings.append))
    assert 0 < n < 100
    assert any("truncated" in w for w in warnings) and all(f"cut{ext}" in w for w in warnings)


@pytest.mark.parametrize("ext", [".mp4", ".ts", ".avi"])
def test_corrupt_packet_mid_stream_is_skipped_and_reported(media, ext):
    good = write_video(media / f"clean{ext}", color_shots([20, 50], 80, SIZE))
    data = bytearray(good.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 1500] = np.random.default_rng(1).bytes(1500)
    bad = media / f"corrupt{ext}"
    bad.write_bytes(bytes(data))
    warnings: list[str] = []
    stats = DecodeStats()
    frames = [f.pts_s for f in iter_frames(bad, on_warning=warnings.append, stats=stats)]
    assert 40 <= len(frames) < 80  # decoding went on past the damage, but frames were lost
    assert frames[-1] > 2.5  # frames after the damage still came
    assert warnings and all(f"corrupt{ext}" in w for w in warnings)
    assert stats.warnings and stats.frames == len(frames)
    assert np.all(np.diff(frames) > 0)


# --- real media -------------------------------------------------------------------------------------


def test_montage_decodes_exactly(montage, montage_truth):
    info = probe(montage)
    assert (info.width, info.height) == (montage_truth["width"], montage_truth["height"])
    assert info.avg_rate == Fraction(montage_truth["fps"])
    assert info.duration_s == pytest.approx(montage_truth["duration_s"], abs=1e-3)
    stats = DecodeStats()
    pts = np.array([f.pts_s for f in iter_frames(montage, stats=stats)])
    assert len(pts) == montage_truth["frame_count"] == 2435
    assert np.abs(pts - np.arange(2435) / 25).max() < 1e-9
    assert stats.warnings == []


def test_real_webm_vp8(shared_media):
    path = shared_media / "originals" / "big_buck_bunny_0_30.webm"
    frames = iter_frames(path)
    first = next(frames)
    assert first.pts_s == 0.0 and first.rgb().shape == (720, 1280, 3)
    assert first.square(224).shape == (224, 224, 3)
    assert sum(1 for _ in frames) + 1 == 720


def test_unreadable_file_when_permissions_cannot_be_dropped(media, monkeypatch):
    # Running as root (CI containers) chmod 0 does not stop reads, so deny access the way the
    # OS would report it to the permission check.
    path = write_video(media / "denied.mp4", color_shots([], 4, SIZE))
    import mediafm.media.decode as decode

    real_access = os.access
    def access(p, mode):
        return False if str(p) == str(path) else real_access(p, mode)

    monkeypatch.setattr(decode.os, "access", access)
    with pytest.raises(MediaDecodeError, match="permission denied") as err:
        probe(path)
    assert "denied.mp4" in str(err.value)


def test_frames_without_pts_get_nominal_times(media):
    # A raw H.264 elementary stream has no container timestamps at all.
    import av

    src = write_video(media / "for_raw.mp4", color_shots([5], 12, SIZE))
    raw = media / "raw.h264"
    with av.open(str(src)) as i, av.open(str(raw), "w", format="h264") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for pk in i.demux(i.streams.video[0]):
            if pk.dts is not None:
                pk.stream = s
                o.mux(pk)
    warnings: list[str] = []
    stats = DecodeStats()
    pts = [f.pts_s for f in iter_frames(raw, on_warning=warnings.append, stats=stats)]
    assert np.allclose(pts, np.arange(12) / 25)
    assert stats.missing_pts == 12 and len(warnings) == 1 and "timestamp" in warnings[0]


def test_decoding_without_the_loop_filter(media):
    # Noise at a high CRF: blocky enough that the deblocking filter changes pixels.
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    frames = [np.roll(base, 3 * i, axis=1) for i in range(30)]
    path = write_video(media / "noisy.mp4", frames, 25, crf=40)
    plain = list(iter_frames(path, threads=1))
    fast = list(iter_frames(path, threads=1, loop_filter=False))
    assert [f.pts_s for f in fast] == [f.pts_s for f in plain] and len(fast) == 30
    diffs = [np.abs(a.rgb(160, 90).astype(int) - b.rgb(160, 90).astype(int)).mean() for a, b in zip(plain, fast)]
    assert min(diffs) > 0.1  # the option reaches the decoder (measured ~2.5 grey levels per pixel)
    assert max(diffs) < 10  # and the pictures stay close
