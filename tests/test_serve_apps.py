"""Explorer API for trained heads: the heads list and a title's predictions, consistent with mediafm.apps."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from mediafm.apps import ad_breaks, fit, save_head, scene_cuts, shot_scores, top_clips
from mediafm.apps.breaks import BreakConfig
from mediafm.errors import ConfigError
from mediafm.serve import predictions as pred
from mediafm.serve.app import ServeConfig, create_app
from mediafm_testing.scenes import FAST_PROBE, clip_labels, scene_store


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-apps")
    store, truth = scene_store(root / "store", n_titles=6, seed=4)
    labels = clip_labels(truth, root / "labels")
    for name, task, file, emb in (("popularity", "rank", "popularity.csv", "contextual"),
                                  ("tone", "multilabel", "tone.csv", "fused"),
                                  ("calm_end", "binary", "calm_end.csv", "contextual"),
                                  ("scenes", "scenes", "scenes.csv", "fused")):
        save_head(fit(store.root, labels / file, task, emb, config=FAST_PROBE).head, root / "heads" / name)
    other, _ = scene_store(root / "other", n_titles=3, dim=24, seed=8, model_id="another-model")
    save_head(fit(other.root, clip_labels(_, root / "other-labels") / "popularity.csv", "rank", "fused", config=FAST_PROBE).head,
              root / "elsewhere" / "foreign")
    app = create_app(store.root, ServeConfig(heads=(str(root / "heads"), str(root / "elsewhere" / "foreign")),
                                             break_spacing_s=6.0))
    return root, store, truth, TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def test_heads_are_listed(served):
    root, store, truth, client = served
    heads = {h["name"]: h for h in client.get("/api/heads").json()}
    assert set(heads) == {"popularity", "tone", "calm_end", "scenes", "foreign"}
    assert heads["tone"]["classes"] == ["calm", "tense"] and heads["popularity"]["model_id"] == "fixture-model"


def test_predictions_match_the_library(served):
    root, store, truth, client = served
    r = client.get("/api/titles/title02/predictions", params={"head": "popularity"})
    assert r.status_code == 200, r.text
    p = r.json()
    n = len(truth["title02"].starts)
    assert [s["shot_index"] for s in p["shots"]] == list(range(n))
    assert [s["score"] for s in p["shots"]] == pytest.approx(shot_scores(store.root, root / "heads" / "popularity",
                                                                         ["title02"])["score"].tolist())
    top = top_clips(store.root, root / "heads" / "popularity", ["title02"], k=5)
    assert [c["start_s"] for c in p["clips"]] == pytest.approx(top["start"].tolist())
    assert [c["end_s"] for c in p["clips"]] == pytest.approx(top["end"].tolist())
    assert p["break_spacing_s"] == 6.0 and all(b - a >= 6.0 for a, b in zip([x["time_s"] for x in p["breaks"]],
                                                                             [x["time_s"] for x in p["breaks"][1:]]))
    cuts = scene_cuts(store.root, ["title02"])
    assert [m["shot_index"] for m in p["scenes"]] == cuts.loc[cuts["boundary"], "shot"].tolist()
    assert p["scene_method"] == "unsupervised:contextual"


def test_classes_scene_heads_and_errors(served):
    root, store, truth, client = served
    get = lambda **q: client.get("/api/titles/title01/predictions", params=q)
    assert get(head="tone").json()["cls"] == "calm" and get(head="tone", cls="tense").json()["cls"] == "tense"
    assert get(head="tone", cls="sad").status_code == 422
    scenes = get(head="scenes").json()
    assert scenes["scene_method"] == "head:scenes" and scenes["shots"] == [] and scenes["scenes"]
    none = get().json()
    assert none["head"] is None and none["shots"] == [] and none["scenes"]
    assert get(head="nope").status_code == 404
    foreign = get(head="foreign")
    assert foreign.status_code == 422 and "other encoders" in foreign.json()["detail"]
    assert get(head="popularity", spacing=-1).status_code == 422
    assert client.get("/api/titles/nope/predictions").status_code == 404


def test_bad_heads_folder_is_a_config_error(tmp_path, served):
    root, store, truth, client = served
    with pytest.raises(ConfigError, match="no head here"):
        create_app(store.root, ServeConfig(heads=(str(tmp_path),)))


@pytest.mark.parametrize("head, cls", [("tone", "tense"), ("tone", "calm"), ("calm_end", None), ("popularity", None)])
def test_every_class_and_spacing_matches_the_library(served, head, cls):
    # The explorer scores a title once for all classes and derives each class and spacing from that.
    root, store, truth, client = served
    folder = root / "heads" / head
    for spacing in (0.0, 3.0, 6.0, 20.0):
        p = client.get("/api/titles/title03/predictions", params={"head": head, "spacing": spacing,
                                                                  **({"cls": cls} if cls else {})}).json()
        assert [s["score"] for s in p["shots"]] == pytest.approx(
            shot_scores(store.root, folder, ["title03"], cls)["score"].tolist())
        top = top_clips(store.root, folder, ["title03"], k=5, klass=cls)
        assert [v for c in p["clips"] for v in (c["start_s"], c["end_s"], c["score"])] == pytest.approx(
            [v for row in zip(top["start"], top["end"], top["score"]) for v in row])
        br = ad_breaks(store.root, folder, ["title03"], BreakConfig(min_spacing_s=spacing), cls)
        assert [b["shot_index"] for b in p["breaks"]] == br["shot"].tolist()
        assert [b["score"] for b in p["breaks"]] == pytest.approx(br["score"].tolist())


def _count_store_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    for name in ("read_table", "read_schema", "ParquetFile"):
        real = getattr(pq, name)
        monkeypatch.setattr(pq, name, lambda *a, _real=real, _name=name, **k: (reads.append(_name), _real(*a, **k))[1])
    return reads


def test_warmed_predictions_are_served_without_recomputation(served, monkeypatch):
    root, store, truth, _ = served
    app = create_app(store.root, ServeConfig(heads=(str(root / "heads"),), break_spacing_s=6.0))
    client = TestClient(app, base_url="http://127.0.0.1")
    app.state.catalog.warm()  # what `mediafm serve` runs in the background at start-up
    reads = _count_store_reads(monkeypatch)
    made: list[str] = []
    for name in ("head_scores", "scene_cuts"):
        monkeypatch.setattr(pred, name, lambda *a, _name=name, **k: made.append(_name))
    for t in truth:  # none requested before: the page's first request for each title and head
        for head in (None, "popularity", "tone", "calm_end", "scenes"):
            r = client.get(f"/api/titles/{t}/predictions", params={"head": head} if head else {})
            assert r.status_code == 200, r.text
            assert r.json()["scenes"]
    assert reads == [] and made == []
    # Another class or spacing of a warmed title is derived from its cached scores.
    for params in ({"head": "tone", "cls": "tense"}, {"head": "calm_end", "spacing": 2.5}):
        assert client.get("/api/titles/title04/predictions", params=params).status_code == 200
    assert reads == [] and made == []


def test_warming_predictions_stops_when_the_store_changes(served, monkeypatch):
    root, store, truth, _ = served
    app = create_app(store.root, ServeConfig(heads=(str(root / "heads"),)))
    cat = app.state.catalog
    scored: list[str] = []
    real = pred.head_scores

    def score_then_store_changes(store_root, head, title):
        scored.append(title)
        cat.generation += 1  # what `refresh` does when it sees a change
        return real(store_root, head, title)

    monkeypatch.setattr(pred, "head_scores", score_then_store_changes)
    cat.warm()
    assert len(scored) == 1 and cat.ready.is_set()
