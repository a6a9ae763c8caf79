"""`mediafm probe` and `mediafm eval` on a small store with planted signal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mediafm.cli.main import main
from mediafm.store.catalog import Store
from mediafm.evaluation.labels import write_labels
from mediafm.types import TitleRecord

N_TITLES, N_SHOTS = 10, 6


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Titles whose video features encode each shot's class; audio is pure noise."""
    root = tmp_path_factory.mktemp("cli")
    st = Store(root / "store", create=True)
    rng = np.random.default_rng(0)
    rows = []
    for t in range(N_TITLES):
        tid = f"t{t}"
        starts = np.arange(N_SHOTS) * 2.0
        shots = pd.DataFrame({"title_id": tid, "shot_index": range(N_SHOTS), "start_frame": starts * 10,
                              "end_frame": starts * 10 + 19, "start_s": starts, "end_s": starts + 2.0,
                              "text": "", "text_source": ""})
        st.write_title(TitleRecord(title_id=tid, path=f"{tid}.mp4", source_key=tid, n_shots=N_SHOTS), shots, None, None)
        cls = rng.integers(0, 2, N_SHOTS)
        video = rng.normal(0, 1, (N_SHOTS, 8)).astype(np.float32)
        video[:, 0] += 3 * cls
        audio = rng.normal(0, 1, (N_SHOTS, 4)).astype(np.float32)
        st.write_features(tid, {"video": video, "audio": audio, "fused": np.concatenate([video, audio], 1)}, {})
        rows += [(tid, s + 0.2, s + 1.8, str(c)) for s, c in zip(starts, cls)]
    labels = root / "labels"
    write_labels(labels / "retrieval.csv", rows)
    write_labels(labels / "genre.csv", [(r[0], r[1], r[2], "ab"[int(r[3])]) for r in rows])
    return root


def test_probe_json(catalog, capsys):
    argv = ["probe", str(catalog / "store"), "--labels", str(catalog / "labels" / "retrieval.csv"),
            "--task", "binary", "--embedding", "video", "--format", "json", "--n-boot", "100"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metric"] == "ap" and out["n_titles"] == N_TITLES and out["dim"] == 8 + 4  # mean+cuts
    assert out["value"] > 0.8  # the planted signal is found
    assert main(argv[:-5] + ["audio", "--format", "json", "--n-boot", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] < 0.75  # noise is not


def test_probe_errors_are_reported_without_traceback(catalog, capsys):
    bad = catalog / "bad.csv"
    bad.write_text("title,start,end,label\nt0,0,1,zz\n")
    assert main(["probe", str(catalog / "store"), "--labels", str(bad), "--task", "rank"]) == 1
    assert "line 2: rank task needs a number" in capsys.readouterr().err
    assert main(["probe", str(catalog / "store"), "--labels", str(bad), "--task", "rank",
                 "--embedding", "contextual"]) == 1
    assert "models' embeddings" in capsys.readouterr().err


def test_eval_writes_markdown_and_json(catalog, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", str(catalog / "store"), "--labels-dir", str(catalog / "labels"), "--out", str(out),
            "--embeddings", "video,audio,contextual", "--n-boot", "100"]
    assert main(argv) == 0
    grid = json.loads((out / "eval.json").read_text())
    assert set(grid["cells"]["video"]) == {"genre", "retrieval"}
    assert "contextual" in grid["skipped"]
    assert grid["cells"]["video"]["retrieval"]["value"] > grid["cells"]["audio"]["retrieval"]["value"]
    md = (out / "eval.md").read_text()
    assert md.startswith("| embedding | genre (macro AP) |") and "| contextual | - |" in md


@pytest.mark.parametrize("argv", [["probe", "s", "--labels", "l.csv", "--task", "binary"],
                                  ["fit", "s", "--labels", "l.csv", "--task", "scenes", "--out", "h"],
                                  ["eval", "s", "--labels-dir", "l", "--out", "o"]])
def test_probe_options_default_to_the_probe_config(argv, capsys):
    from mediafm.cli._probe import probe_config
    from mediafm.cli.main import _build_parser
    from mediafm.evaluation.clips import ClipEmbedder
    from mediafm.evaluation.probes import ProbeConfig

    args = _build_parser(argv[0]).parse_args(argv)
    assert probe_config(args) == ProbeConfig() and args.pooling == ClipEmbedder.pooling and args.model is None
    with pytest.raises(SystemExit):
        _build_parser(argv[0]).parse_args([*argv, "--folds", "1"])
    assert "--folds: must be >= 2" in capsys.readouterr().err
