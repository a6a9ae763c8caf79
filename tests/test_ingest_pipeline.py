"""End-to-end ingestion: real montage with subtitles, generated titles, bad inputs, resume, atomicity."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mediafm.cli.main import main as cli_main
from mediafm.ingest import IngestConfig, ingest
from mediafm.store.catalog import SHOT_COLUMNS, TITLE_COLUMNS, Store
from mediafm.types import Cue
from mediafm_testing.media import color_shots, tone, write_audio, write_subtitles, write_video

FAST = IngestConfig(detector="adaptive")  # generated clips have hard cuts only: the cheap detector suffices
CUTS = [20, 45]
N_FRAMES = 70


def _leftovers(root: Path) -> list[Path]:
    """Temp files or scratch data anywhere in the store."""
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".scratch" in p.parts]


def _boundary_f1(pred: list[int], truth: dict, tol: int = 2) -> float:
    """Cuts match within `tol` frames; dissolves/fades anywhere in their span widened by `tol`."""
    spans = [(t["start_frame"] - tol, t["end_frame"] + tol) for t in truth["transitions"]]
    used: set[int] = set()
    tp = 0
    for lo, hi in spans:
        hit = next((b for b in pred if lo <= b <= hi and b not in used), None)
        if hit is not None:
            used.add(hit)
            tp += 1
    prec = tp / len(pred) if pred else 0.0
    rec = tp / len(spans)
    return 2 * prec * rec / (prec + rec) if tp else 0.0


# ----------------------------------------------------------------------------- the real montage
def _ingest_montage(src_dir: Path, root: Path, shared_media: Path, detector: str):
    for name in ("montage.mp4", "montage.srt"):
        os.symlink(shared_media / name, src_dir / name)
    return root, ingest([src_dir], root, IngestConfig(detector=detector), encode=False, show_progress=False)


@pytest.fixture(scope="module")
def montage_store(tmp_path_factory, shared_media):
    # The adaptive detector keeps this module fast; the default detector's F1 has its own slow test.
    return _ingest_montage(tmp_path_factory.mktemp("montage_in"), tmp_path_factory.mktemp("montage") / "store",
                           shared_media, "adaptive")


def _check_tiling(shots: pd.DataFrame, truth: dict) -> None:
    assert list(shots.columns) == SHOT_COLUMNS
    assert shots["start_frame"].iloc[0] == 0 and shots["end_frame"].iloc[-1] == truth["frame_count"] - 1
    assert (shots["start_frame"].to_numpy()[1:] == shots["end_frame"].to_numpy()[:-1] + 1).all()
    # Times come from PTS: 25 fps constant, so start_s == start_frame / 25 exactly here.
    assert np.allclose(shots["start_s"], shots["start_frame"] / 25.0)
    assert shots["end_s"].iloc[-1] == pytest.approx(truth["duration_s"], abs=1e-6)


def test_montage_shots_match_truth(montage_store, montage_truth):
    root, report = montage_store
    assert len(report.done) == 1 and not report.failed
    shots = pd.read_parquet(root / "shots")  # plain pandas reads the store
    _check_tiling(shots, montage_truth)
    starts = shots["start_frame"].tolist()[1:]
    # Hard cuts: every one found within 2 frames; no boundary outside a transition's span.
    for t in montage_truth["transitions"]:
        if t["type"] == "cut":
            assert any(abs(b - t["start_frame"]) <= 2 for b in starts), t
    spans = [(t["start_frame"] - 2, t["end_frame"] + 2) for t in montage_truth["transitions"]]
    assert all(any(lo <= b <= hi for lo, hi in spans) for b in starts), starts


@pytest.mark.slow
def test_montage_default_detector_f1(tmp_path, shared_media, montage_truth):
    (tmp_path / "in").mkdir()
    root, report = _ingest_montage(tmp_path / "in", tmp_path / "store", shared_media, IngestConfig().detector)
    shots = pd.read_parquet(root / "shots")
    _check_tiling(shots, montage_truth)
    f1 = _boundary_f1(shots["start_frame"].tolist()[1:], montage_truth)
    assert f1 >= 0.95, f"default detector F1 {f1:.3f} on the montage"
    assert shots["text"].str.len().sum() > 0


def test_montage_subtitles_land_in_overlapping_shots(montage_store, montage_truth):
    root, _ = montage_store
    shots = Store(root).shots("montage")
    for cue in montage_truth["speech"]:
        words = " ".join(cue["text"].split())
        overlapping = shots[(shots.start_s < cue["end_s"] - 0.1) & (shots.end_s > cue["start_s"] + 0.1)]
        assert len(overlapping), cue
        for text in overlapping["text"]:
            assert words in " ".join(text.split()), (cue["text"], text)
        assert (overlapping["text_source"] == "subtitle").all()
    # Shots far from every cue carry no text.
    far = shots[[all(s.end_s < c["start_s"] - 0.2 or s.start_s > c["end_s"] + 0.2 for c in montage_truth["speech"])
                 for s in shots.itertuples()]]
    assert (far["text"] == "").all() and (far["text_source"] == "").all()


def test_montage_cues_are_kept_in_the_store(montage_store, shared_media):
    from mediafm.media.subtitles import parse_subtitle_file

    root, _ = montage_store
    want = sorted(parse_subtitle_file(shared_media / "montage.srt"), key=lambda c: (c.start_s, c.end_s))
    assert Store(root).cues("montage") == want and len(want) > 0


def test_montage_media_and_title_row(montage_store, montage_truth):
    root, _ = montage_store
    store = Store(root)
    title = store.title("montage")
    assert set(title) == set(TITLE_COLUMNS)
    assert title["n_frames"] == montage_truth["frame_count"] and title["has_video"] and title["has_audio"]
    assert title["subtitle_source"] == "sidecar:montage.srt"
    frames = store.frames("montage")
    assert frames.dtype == np.uint8 and frames.shape == (title["n_shots"], 3, 224, 224, 3)
    assert frames.reshape(title["n_shots"], -1).std(axis=1).min() > 0  # real pictures, not zeros
    audio = store.audio("montage")
    assert audio.dtype == np.int16 and abs(len(audio) - montage_truth["duration_s"] * 16000) < 16000 * 0.1
    assert _leftovers(root) == []


# ----------------------------------------------------------------------------- generated titles
def _catalog(folder: Path) -> Path:
    """Good titles (video+audio, video without audio, audio-only) and bad inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = tone(440, N_FRAMES / 25)
    write_video(folder / "clip.mp4", color_shots(CUTS, N_FRAMES, (128, 72)), 25, audio=audio)
    write_subtitles(folder / "clip.srt", [Cue(0.2, 0.6, "first words"), Cue(2.0, 2.4, "later words")])
    write_video(folder / "silent.mkv", color_shots([30], 50, (96, 64), seed=1), 25)
    write_audio(folder / "podcast.wav", tone(220, 25.0))
    return folder


def _bad(folder: Path) -> dict[str, str]:
    """Bad inputs -> a word their failure message must contain."""
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notmedia.mp4").write_text("this is a text file, not a video\n" * 50)
    good = (folder / "clip.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(good[: len(good) // 3])
    os.symlink(folder / "does-not-exist", folder / "dangling.mkv")
    return {"empty.mp4": "empty", "notmedia.mp4": "media", "truncated.mp4": "", "dangling.mkv": "read"}


def test_generated_titles_and_bad_inputs(tmp_path):
    src = _catalog(tmp_path / "in")
    expect_fail = _bad(src)
    (src / "silent.srt").write_bytes(b"\xff\xfe\x00garbage -->\n\n1\nnot a time\x00\x01")  # malformed
    root = tmp_path / "store"
    report = ingest([src], root, FAST, encode=False, show_progress=False)
    store = Store(root)
    done = {Path(o.path).name for o in report.done}
    failed = {Path(o.path).name: o for o in report.failed}
    assert done == {"clip.mp4", "silent.mkv", "podcast.wav"}
    assert set(failed) == set(expect_fail)
    for name, word in expect_fail.items():
        assert name in failed and word.lower() in failed[name].error.lower(), (name, failed[name])
    fails = store.failures()
    assert sorted(Path(p).name for p in fails["path"]) == sorted(expect_fail)

    clip = store.shots("clip")
    assert clip["start_frame"].tolist() == [0, *CUTS] and clip["end_frame"].iloc[-1] == N_FRAMES - 1
    assert clip["text"].tolist() == ["first words", "", "later words"]  # shots: 0-0.8, 0.8-1.8, 1.8-2.8 s
    assert store.frames("clip").shape == (3, 3, 224, 224, 3)

    silent = store.title("silent")
    assert silent["has_video"] and not silent["has_audio"] and store.audio("silent") is None
    assert store.shots("silent")["start_frame"].tolist() == [0, 30]
    assert any("subtitle" in w.lower() or "silent.srt" in w for w in json.loads(silent["warnings_json"]))

    pod = store.title("podcast")
    assert not pod["has_video"] and pod["has_audio"] and store.frames("podcast") is None
    pshots = store.shots("podcast")
    assert (pshots["start_frame"] == -1).all() and (pshots["end_frame"] == -1).all()
    assert pshots["start_s"].iloc[0] == 0 and pshots["end_s"].iloc[-1] == pytest.approx(25.0, abs=0.05)
    assert (pshots["start_s"].to_numpy()[1:] == pshots["end_s"].to_numpy()[:-1]).all()
    assert len(store.audio("podcast")) == pytest.approx(25 * 16000, abs=320)
    assert _leftovers(root) == []


def test_resume_skips_done_titles_and_retries_failures(tmp_path):
    src = _catalog(tmp_path / "in")
    (src / "empty.mp4").write_bytes(b"")
    root = tmp_path / "store"
    first = ingest([src], root, FAST, encode=False, show_progress=False)
    assert len(first.done) == 3 and len(first.failed) == 1
    stamps = {t: Store(root).title(t)["ingested_at"] for t in Store(root).title_ids()}
    second = ingest([src], root, FAST, encode=False, show_progress=False)
    assert len(second.skipped) == 3 and len(second.done) == 0 and len(second.failed) == 1
    assert {t: Store(root).title(t)["ingested_at"] for t in Store(root).title_ids()} == stamps
    # Fix the failed file: the next run ingests it and clears its failure record.
    shutil.copy(src / "clip.mp4", src / "empty.mp4")
    third = ingest([src], root, FAST, encode=False, show_progress=False)
    assert [Path(o.path).name for o in third.done] == ["empty.mp4"] and len(third.skipped) == 3
    assert len(Store(root).failures()) == 0
    # A changed file (new size/mtime) is re-ingested under the same id, replacing the old rows
    # and dropping what was derived from the old version.
    derived = [root / "features" / "silent.parquet", root / "contextual" / "m1" / "shots" / "silent.parquet"]
    for f in derived:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"stale")
    write_video(src / "silent.mkv", color_shots([20, 40], 60, (96, 64), seed=2), 25)
    fourth = ingest([src], root, FAST, encode=False, show_progress=False)
    assert [Path(o.path).name for o in fourth.done] == ["silent.mkv"]
    assert Store(root).shots("silent")["start_frame"].tolist() == [0, 20, 40]
    assert not any(f.exists() for f in derived)
    assert len(Store(root).titles()) == 4 and Store(root).titles()["title_id"].is_unique


def test_exception_mid_title_leaves_nothing_partial(tmp_path, monkeypatch):
    src = _catalog(tmp_path / "in")
    root = tmp_path / "store"
    real = Store.write_title

    def exploding(self, record, shots, frames, audio, **kwargs):
        if record.title_id == "silent":
            # Media and shots are written, then the commit fails.
            real(self, replace(record, title_id="__never__"), shots.iloc[:0], None, None)
            raise OSError(28, "No space left on device")
        return real(self, record, shots, frames, audio, **kwargs)

    monkeypatch.setattr(Store, "write_title", exploding)
    report = ingest([src], root, FAST, encode=False, show_progress=False)
    monkeypatch.undo()
    assert {Path(o.path).name for o in report.done} == {"clip.mp4", "podcast.wav"}
    assert [o.stage for o in report.failed] == ["write"] and "space" in report.failed[0].error
    assert not (root / "media" / "silent").exists() and not (root / "shots" / "silent.parquet").exists()
    assert not (root / "titles" / "silent.parquet").exists()
    assert _leftovers(root) == []


def test_tidying_after_the_commit_never_marks_a_title_failed(tmp_path, monkeypatch, caplog):
    src = _catalog(tmp_path / "in")
    (src / "empty.mp4").write_bytes(b"")
    root = tmp_path / "store"
    assert len(ingest([src], root, FAST, encode=False, show_progress=False).failed) == 1
    shutil.copy(src / "clip.mp4", src / "empty.mp4")  # mended: the next run ingests it

    def no_cues(self, title_id, cues):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "write_cues", no_cues)
    report = ingest([src], root, FAST, encode=False, show_progress=False)
    monkeypatch.undo()
    assert [Path(o.path).name for o in report.done] == ["empty.mp4"] and not report.failed
    assert len(Store(root).failures()) == 0  # cleared although the cue table before it failed
    assert "could not be updated" in caplog.text


def test_a_failure_that_cannot_be_recorded_does_not_stop_the_batch(tmp_path, monkeypatch):
    src = _catalog(tmp_path / "in")
    (src / "empty.mp4").write_bytes(b"")
    root = tmp_path / "store"

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "record_failure", disk_full)
    report = ingest([src], root, FAST, encode=False, show_progress=False)
    monkeypatch.undo()
    assert len(report.done) == 3 and [Path(o.path).name for o in report.failed] == ["empty.mp4"]
    assert "failure not recorded" in report.failed[0].error and "empty.mp4" not in report.failed[0].error


def test_keyboard_interrupt_keeps_finished_titles(tmp_path, monkeypatch):
    import mediafm.ingest.outcome as local

    src = _catalog(tmp_path / "in")
    root = tmp_path / "store"
    real = local.process_title
    calls = []

    def interrupted(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(local, "process_title", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest([src], root, FAST, encode=False, show_progress=False)
    monkeypatch.undo()
    store = Store(root)
    assert store.title_ids() == ["clip"] and len(store.shots("clip")) == 3
    assert _leftovers(root) == []
    resumed = ingest([src], root, FAST, encode=False, show_progress=False)
    assert len(resumed.skipped) == 1 and len(resumed.done) == 2


def test_cli_summary_and_exit_codes(tmp_path, capsys):
    src = _catalog(tmp_path / "in")
    root = tmp_path / "store"
    assert cli_main(["ingest", str(src), "--out", str(root), "--detector", "adaptive", "--no-encode", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ingested 3, skipped 0" in out and "failed 0" in out
    (src / "zero.mp4").write_bytes(b"")
    assert cli_main(["ingest", str(src), "--out", str(root), "--detector", "adaptive", "--no-encode", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "skipped 3" in captured.out and "failed 1" in captured.out
    assert "zero.mp4" in captured.out and "empty" in captured.out
    assert "Traceback" not in captured.out + captured.err
    # A path that does not exist is an error naming it, not a traceback.
    assert cli_main(["ingest", str(tmp_path / "nope"), "--out", str(root), "--no-encode", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "nope" in captured.err and "Traceback" not in captured.err
    # An unknown detector stops the run before any title is touched.
    assert cli_main(["ingest", str(src), "--out", str(root), "--detector", "nope", "--no-encode", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "unknown shot detector 'nope'" in captured.err and "Traceback" not in captured.err


def test_a_lost_writer_after_its_commit_counts_as_done(tmp_path):
    from mediafm.ingest.discover import SourceItem
    from mediafm.ingest.outcome import committed
    from mediafm.store.catalog import source_key

    src = _catalog(tmp_path / "in")
    root = tmp_path / "store"
    ingest([src], root, FAST, encode=False, show_progress=False)
    store = Store(root)
    clip = src / "clip.mp4"
    out = committed(store, SourceItem(path=clip, key=source_key(clip), title_id="clip"))
    assert out.status == "done" and out.title_id == "clip" and out.frames == store.title("clip")["n_frames"]
    # Another version of the file, or a title never committed: the caller records the failure.
    assert committed(store, SourceItem(path=clip, key="0" * 16, title_id="clip")) is None
    assert committed(store, SourceItem(path=src / "new.mp4", key="1" * 16, title_id="new")) is None


def test_a_damaged_table_is_an_error_naming_the_file(tmp_path):
    from mediafm.errors import StoreError

    src = _catalog(tmp_path / "in")
    root = tmp_path / "store"
    ingest([src], root, FAST, encode=False, show_progress=False)
    store = Store(root)
    (root / "cues" / "clip.parquet").write_bytes(b"not parquet")
    with pytest.raises(StoreError, match=r"cues/clip\.parquet: cannot read this table"):
        store.cues("clip")
    (root / "shots" / "clip.parquet").write_bytes(b"PAR1")
    with pytest.raises(StoreError, match=r"shots/clip\.parquet: cannot read this table"):
        store.shots("clip")
    store.write_features("podcast", {"audio": np.zeros((len(store.shots("podcast")), 4), np.float32)}, {})
    with pytest.raises(StoreError, match=r"features/podcast\.parquet: no 'fused' column"):
        store.features("podcast")


def test_skip_loop_filter_reaches_the_decoder(tmp_path, monkeypatch):
    import mediafm.media.decode as decode

    src = _catalog(tmp_path / "in")
    seen = []
    real = decode.iter_frames

    def spy(path, *args, loop_filter=True, **kwargs):
        seen.append(loop_filter)
        return real(path, *args, loop_filter=loop_filter, **kwargs)

    monkeypatch.setattr(decode, "iter_frames", spy)
    root = tmp_path / "store"
    assert cli_main(["ingest", str(src / "clip.mp4"), "--out", str(root), "--detector", "adaptive", "--no-encode",
                     "--quiet", "--skip-loop-filter"]) == 0
    assert seen == [False] and len(Store(root).shots("clip")) == 3
