"""The Ray engine writes what the local engine writes, resumes after a kill, records failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mediafm.ingest import IngestConfig, ingest
from mediafm.ingest.scratch import proc_stat
from mediafm.store.catalog import Store
from mediafm.types import Cue
from mediafm_testing.media import color_shots, tone, write_audio, write_subtitles, write_video

pytestmark = pytest.mark.ray

FAST = IngestConfig(detector="adaptive")


@pytest.fixture(scope="module")
def ray_local():
    # Imported here so that the default run (which deselects this module) never skips on it; with
    # `-m ray` and no extra installed, this fails with the install hint.
    try:
        import ray
    except ImportError as e:
        raise ImportError("the Ray tests need the ray extra: pip install -e '.[ray]'") from e
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def _clips(folder: Path, n: int = 2, frames: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cuts = [18 + 2 * i, 40]
        write_video(folder / f"clip{i}.mp4", color_shots(cuts, frames, (96, 64), seed=i), 25,
                    audio=tone(300 + 50 * i, frames / 25))
    write_subtitles(folder / "clip0.srt", [Cue(0.1, 0.5, "hello there")])
    write_audio(folder / "talk.wav", tone(200, 12.0))
    return folder


def _strip(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["ingested_at"]).sort_values("title_id").reset_index(drop=True)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".scratch" in p.parts]


def test_ray_engine_matches_local_and_records_failures(tmp_path, shared_media, ray_local):
    src = _clips(tmp_path / "in")
    os.symlink(shared_media / "montage.mp4", src / "montage.mp4")
    os.symlink(shared_media / "montage.srt", src / "montage.srt")
    (src / "broken.mp4").write_text("not a video")
    local = ingest([src], tmp_path / "local", FAST, encode=False, show_progress=False)
    remote = ingest([src], tmp_path / "ray", FAST, encode=False, engine="ray", show_progress=False)
    assert len(local.done) == len(remote.done) == 4
    assert [Path(o.path).name for o in remote.failed] == ["broken.mp4"]
    a, b = Store(tmp_path / "local"), Store(tmp_path / "ray")
    assert Path(b.failures()["path"].iloc[0]).name == "broken.mp4"
    pd.testing.assert_frame_equal(_strip(a.titles()), _strip(b.titles()))
    pd.testing.assert_frame_equal(a.shots(), b.shots())
    assert a.shots("montage")["text"].str.len().sum() > 0
    for tid in a.title_ids():
        fa, fb = a.frames(tid), b.frames(tid)
        assert (fa is None and fb is None) or np.array_equal(fa, fb)
        wa, wb = a.audio(tid), b.audio(tid)
        assert (wa is None and wb is None) or np.array_equal(wa, wb)
    assert _leftovers(tmp_path / "ray") == []
    # Resume: a second Ray run skips everything done and only retries the failure.
    again = ingest([src], tmp_path / "ray", FAST, encode=False, engine="ray", show_progress=False)
    assert len(again.skipped) == 4 and len(again.done) == 0 and len(again.failed) == 1


def test_ray_encoder_pool_matches_local_embeddings(tmp_path, ray_local):
    pytest.importorskip("mediafm.encoders.encode_store")
    src = _clips(tmp_path / "in", n=1)
    local = ingest([src], tmp_path / "local", FAST, encode=True, show_progress=False)
    remote = ingest([src], tmp_path / "ray", FAST, encode=True, engine="ray", show_progress=False)
    assert local.encode_error == remote.encode_error == ""
    assert sorted(local.encoded) == sorted(remote.encoded) == ["clip0", "talk"]
    a, b = Store(tmp_path / "local"), Store(tmp_path / "ray")
    assert a.check_encoders() == b.check_encoders()
    for tid in a.title_ids():
        for col in ("video", "audio", "text", "fused"):
            np.testing.assert_allclose(a.features(tid, col), b.features(tid, col), atol=1e-4, rtol=1e-4)
        ma, mb = a.meta_embedding(tid), b.meta_embedding(tid)
        assert (ma is None and mb is None) or np.allclose(ma, mb, atol=1e-4)


def _session_pids(sid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        fields = proc_stat(int(proc.name))  # None: exited while listing
        if fields is not None and int(fields[3]) == sid and fields[0] != "Z":  # a zombie is dead already
            pids.append(int(proc.name))
    return pids


def _kill_session(sid: int, timeout: float = 30.0) -> None:
    """SIGKILL every process of a session until none is left: Ray puts each worker in a process
    group of its own, so killing the driver's group leaves workers that go on writing titles."""
    deadline = time.monotonic() + timeout
    while pids := _session_pids(sid):
        assert time.monotonic() < deadline, f"processes of session {sid} survive SIGKILL: {pids}"
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists a session's processes in /proc")
def test_ray_run_killed_midway_resumes_without_duplicates_or_losses(tmp_path, ray_local):
    src = _clips(tmp_path / "in", n=6, frames=150)
    root = tmp_path / "store"
    script = textwrap.dedent(f"""
        from mediafm.ingest import IngestConfig, ingest
        ingest([{str(src)!r}], {str(root)!r}, IngestConfig(detector="adaptive"), encode=False, engine="ray",
               workers=2, show_progress=False)
    """)
    # Its own Ray instance in its own session, so killing the session takes the whole run down.
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    titles = root / "titles"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if titles.exists() and any(titles.glob("*.parquet")):
                break
            time.sleep(0.05)
    finally:
        _kill_session(proc.pid)
        proc.wait()
    done_before = sorted(p.stem for p in titles.glob("*.parquet"))
    assert 1 <= len(done_before) < 7, done_before  # killed mid-way, after the first title
    report = ingest([src], root, FAST, encode=False, engine="ray", show_progress=False)
    store = Store(root)
    assert sorted(o.title_id for o in report.skipped) == done_before
    assert len(report.done) == 7 - len(done_before) and not report.failed
    titles_df = store.titles()
    assert len(titles_df) == 7 and titles_df["title_id"].is_unique and titles_df["source_key"].is_unique
    shots = store.shots()
    assert not shots.duplicated(["title_id", "shot_index"]).any()
    for tid in store.title_ids():
        n = store.title(tid)["n_shots"]
        assert len(store.shots(tid)) == n
        if tid.startswith("clip"):
            assert store.frames(tid).shape[0] == n
    assert _leftovers(root) == []
