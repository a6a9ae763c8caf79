"""Titles without a cut (one shot, a still image with sound, audio only) through every application
command and every explorer endpoint: tables with the usual columns, no 5xx, no traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mediafm.cli.main import main
from mediafm.serve.app import ServeConfig, create_app
from mediafm.types import Cue, TitleRecord
from mediafm_testing.scenes import ENCODERS, clip_labels, scene_store

FAST = ["--folds", "3", "--n-boot", "50"]
# id -> (has_video, has_audio, duration): what ingest writes for each kind of title without cuts
CUTLESS = {"one-shot": (True, False, 6.0), "still-with-sound": (True, True, 30.0), "audio-only": (False, True, 42.0)}


def add_cutless_title(store, tid: str, has_video: bool, has_audio: bool, duration: float, dim: int = 16,
                      model_id: str = "fixture-model", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    shots = pd.DataFrame({"title_id": tid, "shot_index": [0], "start_frame": [0], "end_frame": [0],
                          "start_s": [0.0], "end_s": [duration], "text": ["a line"], "text_source": ["subtitle"]})
    record = TitleRecord(title_id=tid, path=str(store.root.parent / f"{tid}.mp4"), source_key=f"fixture-{tid}",
                         duration_s=duration, has_video=has_video, has_audio=has_audio, width=64 if has_video else 0,
                         height=64 if has_video else 0, n_frames=1 if has_video else 0, n_shots=1,
                         detector="fixture" if has_video else "audio", subtitle_source="fixture", meta_json="{}")
    frames = np.full((1, 1, 224, 224, 3), 90, np.uint8) if has_video else None
    audio = (rng.standard_normal(int(duration * 16000)) * 3000).astype(np.int16) if has_audio else None
    store.write_title(record, shots, frames, audio)
    store.write_cues(tid, [Cue(1.0, 3.0, "a line")])
    fused = rng.standard_normal((1, dim)).astype(np.float32)
    store.write_features(tid, {"fused": fused}, {"fused": {**ENCODERS["fused"], "dim": dim}})
    store.write_contextual(model_id, tid, np.concatenate([fused, fused], 1), fused[0], {"model_id": model_id, "dim": 2 * dim})


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("cutless")
    store, truth = scene_store(root / "store", n_titles=8, seed=3)
    labels = clip_labels(truth, root / "labels")
    heads = root / "heads"
    for name, task, file, emb in (("pop", "rank", "popularity.csv", "contextual"), ("tone", "multilabel", "tone.csv", "fused"),
                                  ("ad", "binary", "calm_end.csv", "contextual"), ("scenes", "scenes", "scenes.csv", "fused")):
        assert main(["fit", str(store.root), "--labels", str(labels / file), "--task", task, "--embedding", emb,
                     "--out", str(heads / name), *FAST]) == 0
    for i, (tid, kind) in enumerate(CUTLESS.items()):
        add_cutless_title(store, tid, *kind, seed=i)
    return store, heads


APPLICATIONS = {
    "predict": ["predict", "--head", "{heads}/pop"],
    "tag-clip": ["tag", "--head", "{heads}/tone"],
    "tag-shot": ["tag", "--head", "{heads}/tone", "--per", "shot"],
    "clips": ["clips", "--rank", "{heads}/pop", "-k", "3"],
    "adbreaks": ["adbreaks", "--head", "{heads}/ad"],
    "adbreaks-all-cuts": ["adbreaks", "--head", "{heads}/ad", "--all-cuts"],
    "adbreaks-rank-head": ["adbreaks", "--head", "{heads}/pop", "--max-breaks", "2"],
    "scenes": ["scenes"],
    "scenes-cuts": ["scenes", "--cuts"],
    "scenes-head": ["scenes", "--head", "{heads}/scenes"],
    "scenes-contextual": ["scenes", "--embedding", "contextual"],
}


@pytest.mark.parametrize("title", list(CUTLESS))
@pytest.mark.parametrize("app", list(APPLICATIONS))
def test_every_application_takes_a_title_without_cuts(catalog, tmp_path, capsys, app, title):
    store, heads = catalog
    argv = [a.format(heads=heads) for a in APPLICATIONS[app]]
    out = tmp_path / "out.csv"
    rc = main([argv[0], str(store.root), *argv[1:], "--titles", title, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    df = pd.read_csv(out) if out.stat().st_size > 1 else pd.DataFrame()
    assert df.empty or set(df["title"]) == {title}
    if app == "tag-shot" or (app.startswith(("predict", "tag", "clips")) and title == "one-shot"):
        # its one shot is a clip of its own (the other titles' shots are longer than any training clip)
        scores = df.filter(regex="^score")
        assert len(df) >= 1 and scores.shape[1] >= 1 and scores.notna().all().all()
    if app.startswith("adbreaks") or app == "scenes-cuts":
        assert df.empty  # no cut, so no break and no scene boundary
    elif app.startswith("scenes"):  # one scene: the whole title
        assert df[["scene", "first_shot", "last_shot", "n_shots"]].values.tolist() == [[0, 0, 0, 1]]


def test_a_title_without_cuts_beside_others_keeps_theirs(catalog, tmp_path):
    store, heads = catalog
    out = tmp_path / "b.csv"
    assert main(["adbreaks", str(store.root), "--head", str(heads / "ad"), "--all-cuts", "--min-spacing", "4",
                 "--titles", "title01", *CUTLESS, "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df["title"]) == {"title01"} and len(df) == len(store.shots("title01")) - 1


@pytest.fixture(scope="module")
def client(catalog):
    store, heads = catalog
    app = create_app(store.root, ServeConfig(heads=(str(heads),)))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("title", list(CUTLESS))
def test_every_explorer_endpoint_answers_for_a_title_without_cuts(client, title):
    urls = [f"/api/titles/{title}", f"/api/titles/{title}/shots/0/thumb.jpg", f"/api/titles/{title}/video",
            f"/api/titles/{title}/shots/0/neighbors", f"/api/titles/{title}/shots/0/neighbors?embedding=contextual",
            f"/api/titles/{title}/map", f"/api/titles/{title}/map?embedding=contextual",
            f"/api/titles/{title}/predictions", "/api/titles", "/api/search?q=a%20line"]
    urls += [f"/api/titles/{title}/predictions?head={h}" for h in ("pop", "tone", "ad", "scenes")]
    urls += [f"/api/titles/{title}/predictions?head=tone&cls=calm", f"/api/titles/{title}/predictions?head=ad&spacing=1"]
    for url in urls:
        r = client.get(url)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
    detail = client.get(f"/api/titles/{title}").json()
    assert len(detail["shots"]) == 1
    for h in ("pop", "tone", "ad"):
        p = client.get(f"/api/titles/{title}/predictions", params={"head": h}).json()
        assert len(p["shots"]) == 1 and p["breaks"] == [] and p["scenes"] == []
    thumb = client.get(f"/api/titles/{title}/shots/0/thumb.jpg")
    assert thumb.status_code == (200 if CUTLESS[title][0] else 404)
