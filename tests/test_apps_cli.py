"""`mediafm fit / predict / tag / clips / adbreaks / scenes` in-process: files written, errors one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mediafm.cli.main import main
from mediafm_testing.scenes import clip_labels, scene_store

FAST = ["--folds", "3", "--n-boot", "50"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("apps-cli")
    store, truth = scene_store(root / "store", n_titles=10, seed=1)
    labels = clip_labels(truth, root / "labels")
    heads = root / "heads"
    for name, task, file, emb in (("pop", "rank", "popularity.csv", "contextual"), ("tone", "multilabel", "tone.csv", "fused"),
                                  ("calm", "binary", "calm_end.csv", "contextual"), ("scenes", "scenes", "scenes.csv", "fused")):
        assert main(["fit", str(store.root), "--labels", str(labels / file), "--task", task, "--embedding", emb,
                     "--out", str(heads / name), *FAST]) == 0
    return root, store, truth, labels, heads


def test_fit_prints_the_cv_metric_and_writes_a_card(catalog, capsys, tmp_path):
    root, store, truth, labels, heads = catalog
    assert main(["fit", str(store.root), "--labels", str(labels / "tone.csv"), "--task", "multilabel",
                 "--out", str(tmp_path / "h"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "grouped 3-fold CV: micro_ap" in out and "calm" in out and "thresholds" in out
    card = json.loads((tmp_path / "h" / "card.json").read_text())
    assert card["format"] == "mediafm-head" and card["task"] == "multilabel" and card["n_titles"] == 10
    assert card["embedding"]["kind"] == "fused" and card["embedding"]["dim"] == 16 and card["created"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_predict_writes_each_format(catalog, tmp_path, suffix):
    root, store, truth, labels, heads = catalog
    out = tmp_path / f"pred{suffix}"
    assert main(["predict", str(store.root), "--head", str(heads / "pop"), "--titles", "title01", "title02",
                 "--out", str(out)]) == 0
    df = pd.read_json(out) if suffix == ".json" else pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert set(df["title"]) == {"title01", "title02"} and {"score", "first_shot", "in_training"} <= set(df.columns)


def test_predict_given_clips(catalog, tmp_path):
    root, store, truth, labels, heads = catalog
    clips = tmp_path / "clips.csv"
    clips.write_text("title,start,end\ntitle03,0.5,4.0\ntitle04,2.0,9.0\n")
    out = tmp_path / "p.csv"
    assert main(["predict", str(store.root), "--head", str(heads / "tone"), "--clips", str(clips), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert df[["title", "start", "end"]].values.tolist() == [["title03", 0.5, 4.0], ["title04", 2.0, 9.0]]
    assert {"score_calm", "score_tense"} <= set(df.columns)


def test_the_applications_print_a_table_and_write_a_file(catalog, tmp_path, capsys):
    root, store, truth, labels, heads = catalog
    s = str(store.root)
    runs = {
        "tag": ["tag", s, "--head", str(heads / "tone"), "--per", "shot"],
        "clips": ["clips", s, "--rank", str(heads / "pop"), "-k", "2", "--min-s", "3", "--max-s", "9"],
        "adbreaks": ["adbreaks", s, "--head", str(heads / "calm"), "--min-spacing", "8"],
        "scenes": ["scenes", s],
        "scene-head": ["scenes", s, "--head", str(heads / "scenes")],
    }
    for name, argv in runs.items():
        out = tmp_path / f"{name}.csv"
        assert main([*argv, "--out", str(out)]) == 0, name
        printed = capsys.readouterr().out
        df = pd.read_csv(out)
        assert len(df) and df.iloc[0]["title"] in printed, name
    clips = pd.read_csv(tmp_path / "clips.csv")
    assert clips.groupby("title").size().max() == 2 and clips["duration"].between(3, 9).all()
    breaks = pd.read_csv(tmp_path / "adbreaks.csv")
    assert breaks.groupby("title")["time_s"].diff().dropna().ge(8).all()
    scenes = pd.read_csv(tmp_path / "scenes.csv")
    assert scenes.groupby("title")["n_shots"].sum().to_dict() == {t: len(v.starts) for t, v in truth.items()}


def _fails(argv, capsys, needle):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and needle in err, err
    return err


def test_bad_input_is_one_line_and_writes_nothing(catalog, tmp_path, capsys):
    root, store, truth, labels, heads = catalog
    s = str(store.root)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("title,start,end,label\ntitle01,0,2,1\nelsewhere,0,2,0\n")
    _fails(["fit", s, "--labels", str(unknown), "--task", "binary", "--out", str(tmp_path / "h1")], capsys,
           "1 clips name titles not in the store")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails(["fit", s, "--labels", str(empty), "--task", "binary", "--out", str(tmp_path / "h2")], capsys, "empty labels file")
    empty.write_text("title,start,end,label\n")
    _fails(["fit", s, "--labels", str(empty), "--task", "binary", "--out", str(tmp_path / "h2")], capsys, "no labelled clips")
    outside = tmp_path / "outside.csv"
    outside.write_text("title,start,end\ntitle01,0,2\ntitle01,400,410\n")
    _fails(["predict", s, "--head", str(heads / "pop"), "--clips", str(outside), "--out", str(tmp_path / "p.csv")],
           capsys, "line 3: clip 400-410 s is outside title 'title01'")
    # A store of other encoders (24-d) and another model: no head of this store applies to it.
    other, _ = scene_store(tmp_path / "other", n_titles=3, dim=24, seed=9, model_id="another-model")
    for cmd in (["predict", "--head"], ["clips", "--rank"], ["adbreaks", "--head"], ["tag", "--head"]):
        head = heads / ("tone" if cmd[0] == "tag" else "calm" if cmd[0] == "adbreaks" else "pop")
        needle = "other encoders" if cmd[0] == "tag" else "another-model"
        _fails([cmd[0], str(other.root), cmd[1], str(head), "--out", str(tmp_path / "x.csv")], capsys, needle)
    _fails(["scenes", str(other.root), "--head", str(heads / "scenes"), "--out", str(tmp_path / "x.csv")], capsys,
           "other encoders")
    _fails(["predict", s, "--head", str(heads / "pop"), "--out", str(tmp_path / "x.txt")], capsys, "must end in .csv")
    _fails(["predict", s, "--head", str(tmp_path), "--out", str(tmp_path / "x.csv")], capsys, "no card.json")
    _fails(["tag", s, "--head", str(heads / "pop"), "--out", str(tmp_path / "x.csv")], capsys, "rank head")
    _fails(["predict", s, "--head", str(heads / "pop"), "--titles", "nope", "--out", str(tmp_path / "x.csv")], capsys,
           "not in the store: 'nope'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "other", "outside.csv", "unknown.csv"]
