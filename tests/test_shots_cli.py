"""`mediafm shots`: JSON and table output, clear errors for bad input."""

from __future__ import annotations

import json

from mediafm.cli.main import main
from mediafm_testing.media import color_shots, write_video


def test_shots_json_and_table(tmp_path, capsys):
    path = write_video(tmp_path / "c.mp4", color_shots([20, 50], 80, size=(96, 64)), fps=25)
    assert main(["shots", str(path), "--detector", "adaptive", "--format", "json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["detector"] == "adaptive"
    assert [(s["start_frame"], s["end_frame"]) for s in doc["shots"]] == [(0, 19), (20, 49), (50, 79)]
    assert doc["shots"][1]["start_s"] == 0.8 and doc["shots"][-1]["end_s"] == 3.2
    assert main(["shots", str(path), "--detector", "fast", "--threshold", "3", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["index", "start_frame", "end_frame", "start_s", "end_s"] and len(lines) == 4


def test_shots_bad_input(tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert main(["shots", str(fake), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "fake.mp4" in err and "Traceback" not in err
    assert main(["shots", str(tmp_path / "missing.mkv"), "--quiet"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["shots", str(fake), "--detector", "nope", "--quiet"]) == 1
    assert "unknown shot detector" in capsys.readouterr().err
