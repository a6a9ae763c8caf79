"""Unit tests of the ingest building blocks: frame sampler, streamed .npy, discovery, config, CLI flags."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest

from mediafm.errors import ConfigError, MediaDecodeError
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem, discover, plan_items
from mediafm.ingest.npy import NpyAppender
from mediafm.ingest.sampling import FrameSampler
from mediafm.shots.base import ShotDetector


def _img(i: int) -> np.ndarray:
    return np.full((4, 4, 3), i % 256, np.uint8)


def _sampler(k=3, recent=8, capacity=6) -> FrameSampler:
    return FrameSampler(k, recent, capacity, convert=_img)


def test_sampler_picks_centres_of_k_parts_with_detector_lag():
    s = _sampler(k=3, recent=50)  # the whole shot fits the unconverted window: exact picks
    for i in range(40):  # boundary at 30 confirmed 10 frames late
        s.push(i, i)
    picks = s.close(29)  # shot 0..29: centres of thirds are frames 4.5, 14.5, 24.5
    assert [int(p[0, 0, 0]) for p in picks] == [4, 14, 24]
    for i in range(40, 45):
        s.push(i, i)
    picks = s.close(44)  # shot 30..44: 32, 37, 42
    assert [int(p[0, 0, 0]) for p in picks] == [32, 37, 42]


def test_sampler_memory_is_bounded_and_picks_stay_inside_long_shots():
    s = FrameSampler(3, 8, 6, convert=lambda i: np.array([i]))
    for i in range(100_000):
        s.push(i, i)
        assert len(s.recent) <= 8 and len(s.older) <= 6
    picks = s.close(99_999)
    got = [int(p[0]) for p in picks]
    # Converted frames are only the decimated ones plus the picks, a tiny share of the shot.
    assert s.converted < 200
    # Decimated, but still one pick inside each third of the shot.
    assert [g * 3 // 100_000 for g in got] == [0, 1, 2]


def test_sampler_short_shot_shorter_than_k():
    s = _sampler(k=3)
    s.push(0, 0)
    s.push(1, 1)
    picks = s.close(1)
    assert picks.shape == (3, 4, 4, 3)
    assert {int(p[0, 0, 0]) for p in picks} <= {0, 1}


def test_npy_appender_roundtrip_and_discard(tmp_path):
    a = NpyAppender(tmp_path / "x.npy", np.uint8, (2, 3))
    a.append(np.ones((4, 2, 3), np.uint8))
    a.append(np.zeros((1, 2, 3), np.uint8))
    out = np.load(a.close())
    assert out.shape == (5, 2, 3) and out[:4].all() and not out[4].any()
    b = NpyAppender(tmp_path / "y.npy", np.int16)
    b.append(np.arange(10, dtype=np.int16))
    b.discard()
    assert not (tmp_path / "y.npy").exists()
    with pytest.raises(ValueError):
        NpyAppender(tmp_path / "z.npy", np.uint8, (2,)).append(np.zeros((1, 3), np.uint8))


def test_npy_appender_long_header_is_rewritten(tmp_path):
    # A structured dtype's descr makes the header longer than the reserved 128 bytes.
    dt = np.dtype([(f"field_{i:02d}", np.float32) for i in range(12)])
    a = NpyAppender(tmp_path / "s.npy", dt)
    rows = np.zeros(3, dt)
    rows["field_05"] = [1, 2, 3]
    a.append(rows)
    out = np.load(a.close())
    assert out.shape == (3,) and out["field_05"].tolist() == [1, 2, 3]


def test_discover_folders_recursively_skips_sidecars_and_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ["b/z.MKV", "a.mp4", "a.srt", "a.json", "a.en.srt", "notes.txt", "song.flac",
                 ".hidden/c.mp4", ".tmp.mp4", "b/podcast.opus"]:
        (tmp_path / name).write_bytes(b"x")
    cfg = IngestConfig()
    got = discover([tmp_path], cfg.extensions)
    assert [p.relative_to(tmp_path).as_posix() for p in got] == ["a.mp4", "b/podcast.opus", "b/z.MKV", "song.flac"]
    # An explicitly named file is taken whatever its suffix; duplicates collapse.
    got = discover([tmp_path / "notes.txt", tmp_path / "a.mp4", tmp_path], cfg.extensions)
    assert len(got) == 5 and got == sorted(got, key=str)
    with pytest.raises(MediaDecodeError, match="no such file"):
        discover([tmp_path / "missing.mp4"], cfg.extensions)


def test_plan_items_gives_unique_stable_ids_and_reports_unreadable(tmp_path):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    files = [tmp_path / "d1" / "film.mp4", tmp_path / "d2" / "film.mp4", tmp_path / "film.mkv"]
    for f in files:
        f.write_bytes(b"x")
    dangling = tmp_path / "gone.mp4"
    os.symlink(tmp_path / "nowhere", dangling)
    items = plan_items(sorted(files + [dangling], key=str))
    ok = [i for i in items if isinstance(i, SourceItem)]
    bad = [i for i in items if isinstance(i, tuple)]
    assert len({i.title_id for i in ok}) == 3 and ok[0].title_id == "film"
    assert len(bad) == 1 and bad[0][0] == dangling and "cannot read" in str(bad[0][1])
    again = plan_items(sorted(files, key=str))
    assert [i.title_id for i in again] == [i.title_id for i in ok]
    # A stem already owned in the store by another path gets the hashed id.
    moved = plan_items([files[0]], existing={"film": "/elsewhere/film.mp4"})
    assert moved[0].title_id != "film" and moved[0].title_id.startswith("film-")


def test_config_validation_and_overrides():
    cfg = IngestConfig().with_overrides(detector="adaptive", frames_per_shot=None)
    assert cfg.detector == "adaptive" and cfg.frames_per_shot == IngestConfig().frames_per_shot
    assert IngestConfig(extensions=("MP4", ".Wav")).extensions == (".mp4", ".wav")
    assert IngestConfig.from_dict(IngestConfig().to_dict()) == IngestConfig()
    with pytest.raises(ConfigError):
        IngestConfig(frames_per_shot=0)
    with pytest.raises(ConfigError):
        IngestConfig().with_overrides(nonsense=1)


def test_cli_flag_defaults_come_from_the_config():
    from mediafm.cli import ingest as cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["x.mp4", "--out", "store"])
    cfg = IngestConfig()
    got = (args.detector, args.frames_per_shot, args.audio_window)
    assert got == (cfg.detector, cfg.frames_per_shot, cfg.audio_window_s)
    assert args.engine == "local" and not args.no_encode


def test_title_record_is_the_title_table_row(tmp_path):
    """Written with the store's column types whatever numbers it holds, and read back unchanged."""
    from dataclasses import replace

    import pandas as pd
    import pyarrow.parquet as pq

    from mediafm.store.catalog import TITLE_SCHEMA, Store
    from mediafm.types import TitleRecord

    store = Store(tmp_path / "s", create=True)
    record = TitleRecord(title_id="t", path="/x/t.mp4", source_key="k", duration_s=2, n_shots=1, detector="audio")
    shots = pd.DataFrame({"title_id": ["t"], "shot_index": [0], "start_frame": [-1], "end_frame": [-1],
                          "start_s": [0.0], "end_s": [2.0], "text": [""], "text_source": [""]})
    store.write_title(record, shots, None, None)
    assert pq.read_schema(store.table_file("titles", "t")) == TITLE_SCHEMA  # duration_s 2 stored as a double
    row = store.title("t")
    assert row["ingested_at"] > 0  # stamped at the commit
    assert TitleRecord.from_row(row) == replace(record, ingested_at=row["ingested_at"])
    assert TitleRecord.from_row({**row, "subtitle_encoding": None}).subtitle_encoding == ""  # an older row


def test_sampler_lazy_conversion_is_bounded_and_exact():
    converted = []

    def convert(i):
        converted.append(i)
        return np.array([i])

    s = FrameSampler(3, recent=100, capacity=6, convert=convert, lazy=10)
    for i in range(90):
        s.push(i, i)
        assert s.n_lazy <= 10 and sum(not e[2] for e in s.recent) == s.n_lazy
    assert len(converted) == 80  # all but the newest 10 are squares now
    picks = s.close(29)  # shot 0..29 still in the full-rate window: exact centres
    assert [int(p[0]) for p in picks] == [4, 14, 24]
    assert [int(p[0]) for p in s.close(89)] == [39, 59, 79]  # shot 30..89: centres 39.5, 59.5, 79.5


def test_sampler_converts_only_the_picks_when_the_budget_covers_older_candidates():
    converted = []

    def convert(i):
        converted.append(i)
        return np.array([i])

    s = FrameSampler(3, recent=20, capacity=6, convert=convert, lazy=26)  # 26 >= 20 + 6: keep decoded
    for i in range(500):
        s.push(i, i)
    picks = s.close(499)  # one long shot: candidates left `recent` at halving density
    assert len(converted) == 3 and sorted(converted) == sorted(int(p[0]) for p in picks)
    assert len(s.older) == 0 and all(not e[2] for e in s.recent)
    # The same shot with a budget too small for that converts the candidates as they age.
    converted.clear()
    s = FrameSampler(3, recent=20, capacity=6, convert=convert, lazy=10)
    for i in range(500):
        s.push(i, i)
    assert [int(p[0]) for p in s.close(499)] == [int(p[0]) for p in picks]
    assert len(converted) > 3


class _FakeFrame:
    """Stands in for media.decode.Frame: cheap pixels, exact 25 fps PTS."""

    def __init__(self, index: int):
        self.index, self.pts_s = index, index / 25

    def rgb(self, w: int, h: int) -> np.ndarray:
        return np.full((h, w, 3), (self.index // 500) % 256, np.uint8)

    def square(self, side: int) -> np.ndarray:
        return np.full((side, side, 3), self.index % 256, np.uint8)


class _EveryN(ShotDetector):
    """A detector that cuts every `n` frames, confirming each cut `lag` frames late."""

    frame_size = (8, 6)
    lookahead = 40

    def __init__(self, n: int):
        self.n = n

    def boundaries(self, frames):
        pending = []
        for i, _ in enumerate(frames):
            if i and i % self.n == 0:
                pending.append(i)
            if pending and i - pending[0] >= 30:
                yield pending.pop(0)
        yield from pending


class _EveryNThreaded(_EveryN):
    """_EveryN reading its frames in a thread of its own, as the pipelined TransNetV2 does."""

    @property
    def input_threads(self):
        # TransNetV2's depends on the calling thread's torch setting: the caller's is the one meant.
        import threading

        return 1 if threading.current_thread() is threading.main_thread() else None

    def boundaries(self, frames):
        from mediafm.prefetch import prefetch

        return super().boundaries(prefetch(frames, 2))


def _fake_title(monkeypatch, tmp_path, n_frames: int, cut_every: int, detector=_EveryN, decode_kw=None):
    import tracemalloc

    import mediafm.ingest.worker as worker
    import mediafm.media.decode as decode
    from mediafm.types import VideoInfo

    info = VideoInfo(duration_s=n_frames / 25, has_video=True, has_audio=False, width=640, height=360)
    monkeypatch.setattr(decode, "probe", lambda p: info)
    def iter_frames(p, **kw):
        if decode_kw is not None:
            decode_kw.update(kw)
        return (_FakeFrame(i) for i in range(n_frames))

    monkeypatch.setattr(decode, "iter_frames", iter_frames)
    monkeypatch.setattr(worker, "_detector", lambda name, device="auto": detector(cut_every))
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "long.mp4"
    src.write_bytes(b"x")
    tracemalloc.start()
    result = worker.process_title(src, IngestConfig(), scratch_dir=tmp_path / "scratch", key="k")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak


def test_process_title_memory_does_not_grow_with_title_length(monkeypatch, tmp_path):
    short, peak_short = _fake_title(monkeypatch, tmp_path / "a", 3_000, 1_000)
    long, peak_long = _fake_title(monkeypatch, tmp_path / "b", 30_000, 1_000)
    assert long.record.n_shots == 30 and long.frames.shape == (30, 3, 224, 224, 3)
    assert long.shots["start_frame"].tolist() == list(range(0, 30_000, 1_000))
    # Frame k of shot s is near the centre of the k-th third: index % 256 encodes it.
    centre = 1_000 + (np.arange(3) + 0.5) * 1_000 / 3
    got = long.frames[1, :, 0, 0, 0].astype(int)
    assert all(any(abs(c - j) <= 64 and j % 256 == g for j in range(1_000, 2_000)) for c, g in zip(centre, got))
    # 10x the frames, about the same peak (only 8 bytes of PTS per frame are kept).
    assert peak_long < peak_short + 30_000 * 8 + (4 << 20), (peak_short, peak_long)
    short.discard()
    long.discard()


def test_process_title_with_a_detector_that_decodes_in_its_own_thread(monkeypatch, tmp_path):
    """Same shots and picks; the decoder gets the detector's thread count."""
    kw: dict = {}
    plain, _ = _fake_title(monkeypatch, tmp_path / "a", 5_000, 700)
    threaded, _ = _fake_title(monkeypatch, tmp_path / "b", 5_000, 700, _EveryNThreaded, kw)
    assert kw["threads"] == 1
    assert threaded.shots.equals(plain.shots)
    np.testing.assert_array_equal(threaded.frames, plain.frames)
    plain.discard()
    threaded.discard()


def test_local_engine_never_imports_ray():
    import subprocess
    import sys

    code = ("import sys, mediafm.ingest, mediafm.ingest.local, mediafm.ingest.worker, mediafm.cli.ingest, "
            "mediafm.ingest.engines; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_lookup_registers_ray_engine_without_importing_ray():
    import subprocess
    import sys

    code = ("import sys\nfrom mediafm.ingest.engines import ENGINES, get_engine\nget_engine('local')\n"
            "print(ENGINES, 'mediafm.ingest.ray_engine' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('local', 'ray') True False"


def test_ray_engine_without_ray_says_how_to_install(tmp_path, monkeypatch):
    import sys

    from mediafm.ingest import ingest

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"pip install 'mediafm\[ray\]'"):
        ingest([tmp_path / "a.wav"], tmp_path / "store", IngestConfig(detector="adaptive"), engine="ray",
               show_progress=False)
    assert not (tmp_path / "store").exists()


def test_background_returns_result_reraises_and_cancels():
    import threading

    from mediafm.prefetch import Background

    assert Background(lambda a, stop: a + 1, 41).result() == 42

    def fail(stop):
        raise MediaDecodeError("x.mp4", "broken")

    with pytest.raises(MediaDecodeError, match="broken"):
        Background(fail).result()

    seen = threading.Event()

    def loop(stop):
        seen.set()
        while not stop.is_set():
            stop.wait(0.01)
        return "stopped"

    job = Background(loop)
    assert seen.wait(5)
    job.cancel()  # returns only once the function has seen the stop event and ended
    assert not job._thread.is_alive()


def test_video_failure_cancels_the_audio_thread_and_leaves_no_scratch(monkeypatch, tmp_path):
    """A title whose video pass fails while its audio decodes in the background leaves nothing behind."""
    from mediafm.ingest import worker
    from mediafm_testing.media import tone, write_video

    video = tmp_path / "t.mp4"
    frames = [np.full((48, 64, 3), 40 * (i // 10), np.uint8) for i in range(30)]
    write_video(video, frames, fps=10, audio=tone(440, 3.0))

    def broken(*args, **kwargs):
        raise MediaDecodeError(video, "simulated video failure")

    monkeypatch.setattr(worker, "_video_shots", broken)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(MediaDecodeError, match="simulated"):
        worker.process_title(video, scratch_dir=scratch)
    assert list(scratch.iterdir()) == []


def test_large_frames_are_reduced_once_with_the_same_shots_and_near_identical_picks(tmp_path):
    """Frames too large to keep unconverted (here forced by a small `recent_bytes`) go through one
    YUV reduction: same shots, and picked squares within rounding of the full-size path's."""
    import mediafm.ingest.worker as worker
    from mediafm_testing.media import color_shots, write_video

    src = write_video(tmp_path / "hd.mp4", color_shots([20, 45], 70, (1280, 720), seed=3), 25)
    out = {}
    for name, budget in (("full", 1 << 30), ("reduced", 1 << 20)):
        cfg = IngestConfig(detector="adaptive", recent_bytes=budget)
        out[name] = worker.process_title(src, cfg, scratch_dir=tmp_path / name, key="k")
    assert out["full"].shots.equals(out["reduced"].shots)
    assert out["full"].shots["start_frame"].tolist() == [0, 20, 45]
    a, b = (out[n].frames.astype(int) for n in ("full", "reduced"))
    assert a.shape == b.shape == (3, 3, 224, 224, 3)
    assert np.abs(a - b).mean() < 2.0 and np.abs(a - b).max() < 40
    for r in out.values():
        r.discard()


def test_decoder_threads_follow_the_measured_costs(monkeypatch, tmp_path):
    """Every core to the decoder when decoding costs more per frame than detecting; else the
    detector's split (one decoder thread beside its own)."""
    import mediafm.ingest.worker as worker
    import mediafm.media.decode as decode

    det = _EveryNThreaded(10)
    det._frame_cost = 0.003
    asked = []
    monkeypatch.setattr(decode, "decode_cost", lambda path, loop_filter: asked.append(loop_filter) or 0.030)  # 4K-like
    assert worker._decoder_threads(tmp_path / "x.mp4", det) == 0
    assert worker._decoder_threads(tmp_path / "x.mp4", det, loop_filter=False) == 0
    assert asked == [True, False]  # measured as the title will be decoded
    monkeypatch.setattr(decode, "decode_cost", lambda path, loop_filter: 0.001)  # 360p-like
    assert worker._decoder_threads(tmp_path / "x.mp4", det) == 1
    assert worker._decoder_threads(tmp_path / "x.mp4", _EveryN(10)) is None  # no pipeline: FFmpeg's own


def test_decode_cost_and_detector_cost_are_measured(montage):
    from mediafm.media.decode import decode_cost
    from mediafm.shots import get_detector

    assert 0.0 < decode_cost(montage) < 0.05
    assert 0.0 < decode_cost(montage, loop_filter=False) < 0.05
    assert decode_cost(montage.parent / "missing.mp4") == 0.0
    assert 0.0 < get_detector("adaptive").frame_cost() < 0.05


def test_decode_cost_stops_at_its_cpu_budget(montage, monkeypatch):
    import av

    from mediafm.media import decode

    decoded = []
    real = av.container.InputContainer.decode

    def counting(self, *a, **k):
        for frame in real(self, *a, **k):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", counting)
    assert decode.decode_cost(montage, frames=10_000, budget_s=0.0) > 0.0
    assert len(decoded) == 5  # the key frame and four timed frames, not the whole file


def test_engines_are_looked_up_by_name_and_share_one_interface():
    from mediafm.ingest.engines import ENGINES, get_engine
    from mediafm.ingest.local import LocalEngine

    assert ENGINES == ("local", "ray")
    assert isinstance(get_engine("local"), LocalEngine)
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        get_engine("spark")
    assert isinstance(get_engine("local", address=None, workers=None), LocalEngine)  # unset: left out
    with pytest.raises(ConfigError, match="the local engine takes no address"):
        get_engine("local", address="ray://head:10001")


def test_scratch_of_dead_writers_on_this_host_is_removed(tmp_path):
    import os

    from mediafm.ingest.scratch import clean_dead_scratch
    from mediafm.store.commit import host, owned_name, parse_owned_name

    mine = owned_name("a.title-1")
    m = parse_owned_name(mine + ".frames.npy")
    assert (m["title_id"], m["host"], int(m["pid"]), m["suffix"]) == ("a.title-1", host(), os.getpid(), ".frames.npy")
    assert parse_owned_name("notes.txt") is None
    dead = 1
    while True:  # a pid no process has
        dead += 7919
        try:
            os.kill(dead, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
    names = {"live": mine + ".audio.npy", "dead": f"t.{host()}~{dead}.0123abcd.frames.npy",
             "other host": f"t.elsewhere~{dead}.0123abcd.frames.npy", "foreign": "readme.txt"}
    for n in names.values():
        (tmp_path / n).write_bytes(b"")
    assert clean_dead_scratch(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(v for k, v in names.items() if k != "dead")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_scratch_of_a_killed_writer_not_yet_reaped_is_removed(tmp_path):
    # Signal 0 reaches a zombie; a writer killed with its parent stays one until init reaps it.
    import subprocess
    import sys
    import time

    from mediafm.ingest.scratch import clean_dead_scratch, proc_stat
    from mediafm.store.commit import host

    proc = subprocess.Popen([sys.executable, "-c", "pass"])  # exits and stays a zombie until waited for
    try:
        deadline = time.monotonic() + 30
        while proc_stat(proc.pid)[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.02)
        (tmp_path / f"t.{host()}~{proc.pid}.0123abcd.frames.npy").write_bytes(b"")
        assert clean_dead_scratch(tmp_path) == 1
        assert list(tmp_path.iterdir()) == []
    finally:
        proc.wait()
