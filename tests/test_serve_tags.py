"""The tag loop: scoring a catalog with a head, choosing clips to label, the workspace on disk, and
its API (`mediafm serve --workspace`), with its write protections."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mediafm_testing.scenes import FAST_PROBE, scene_store

from mediafm.apps import labelloop as ll
from mediafm.apps.apply import tag as apply_tag
from mediafm.apps.head import load_head
from mediafm.evaluation.labels import read_labels
from mediafm.evaluation.probes import LinearHead
from mediafm.serve.app import ServeConfig, create_app
from mediafm.serve.workspace import Workspace, WorkspaceError, tag_id

FAST_TAGS = dataclasses.replace(FAST_PROBE, head="logistic")  # the tag loop's probe, fewer folds


# ----------------------------------------------------------------------------- pure compute
def _table(sizes=(5, 3, 8), dim=6, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for t, n in enumerate(sizes):
        ends = np.cumsum(rng.uniform(1, 2, n))
        parts.append((f"t{t}", np.r_[0, ends[:-1]], ends, rng.standard_normal((n, dim)).astype(np.float32)))
    return ll.ShotTable.build(parts, dtype=np.float32), parts


def test_candidates_tile_each_title_without_crossing_titles():
    table, _ = _table()
    c = ll.candidates(table, 3)
    assert np.all(table.title_of(c.first) == c.title) and np.all(table.title_of(c.last) == c.title)
    for t, n in enumerate((5, 3, 8)):
        rows = np.flatnonzero(c.title == t)
        a = table.offsets[t]
        covered = set()
        for i in rows:
            assert c.last[i] - c.first[i] + 1 == min(3, n)
            covered |= set(range(c.first[i] - a, c.last[i] - a + 1))
        assert covered == set(range(n))  # every shot is in a candidate; the last run ends at the last shot


@pytest.mark.parametrize("link", ["identity", "sigmoid"])
def test_clip_scores_equal_the_head_on_mean_pooled_vectors(link):
    from mediafm.apps.head import TrainedHead

    table, _ = _table()
    rng = np.random.default_rng(1)
    lin = LinearHead(rng.standard_normal(6), rng.uniform(0.5, 2, 6), rng.standard_normal(6), np.asarray(0.3), link)
    head = TrainedHead(card=None, linear=lin)
    w, b, lk = ll.linear_parts(head)
    c = ll.candidates(table, 2, 1)
    got = ll.clip_scores(ll.project(table, w), c, b, lk)
    want = head.linear(ll.clip_vectors(table, c, list(range(len(c)))))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_top_and_suggestions_skip_labelled_and_overlapping_clips():
    table, _ = _table(sizes=(12, 12, 12, 12))
    c = ll.candidates(table, 2, 1)
    scores = np.random.default_rng(2).uniform(0, 1, len(c))
    best = ll.top(scores, c, 5)
    assert best[0] == int(np.argmax(scores))
    spans = [(int(c.title[i]), int(c.first[i]), int(c.last[i])) for i in best]
    for x, (t, a, b) in enumerate(spans):  # no two overlap
        assert all(not (t == u and a <= e and s <= b) for y, (u, s, e) in enumerate(spans) if y != x)
    labelled = [(table.titles[c.title[best[0]]], float(table.starts[c.first[best[0]]]), float(table.ends[c.last[best[0]]]))]
    ex = ll.overlapping(table, c, labelled)
    assert ex[best[0]] and best[0] not in ll.top(scores, c, 5, ex)
    sug = ll.suggest(table, c, scores, 0.5, 4, ex)
    assert len(sug) == 4 and not ex[sug].any()
    assert len({int(c.title[i]) for i in sug}) == 4  # one per title while titles remain
    near = np.sort(np.abs(scores - 0.5))
    assert max(abs(scores[i] - 0.5) for i in sug) <= near[40]  # taken from the uncertain end


def test_suggestions_skip_near_duplicates():
    table, _ = _table(sizes=(4, 4, 4), dim=3)
    v = np.ones((12, 3), np.float32)  # every clip the same vector
    table = ll.ShotTable(table.titles, table.offsets, table.starts, table.ends, v)
    c = ll.candidates(table, 1)
    assert len(ll.suggest(table, c, np.full(len(c), 0.5), 0.5, 5)) == 1


def test_labels_needed_says_what_is_missing():
    assert ll.labels_needed([1, 1, 1, 0, 0, 0], ["a", "b", "c", "a", "b", "c"]) is None
    msg = ll.labels_needed([1, 0], ["a", "a"])
    assert "2 more positives" in msg and "2 more negatives" in msg and "labels in 2 more titles" in msg
    assert "label 1 more positive to fit" in ll.labels_needed([1, 1, 0, 0, 0], ["a", "b", "c", "a", "b"])


# ----------------------------------------------------------------------------- the workspace on disk
@pytest.fixture(scope="module")
def store_truth(tmp_path_factory):
    return scene_store(tmp_path_factory.mktemp("tags") / "store", n_titles=6, seed=3)


def _shot_clips(truth, per_title=6):
    """(title, start, end, answer) one-shot clips: 1 when the shot's scene is tense."""
    out = []
    for t in truth.values():
        for i in np.linspace(0, len(t.starts) - 1, per_title).astype(int):
            out.append((t.title, float(t.starts[i]), float(t.ends[i]), int(t.tension[t.scene_of_shot[i]] > 0.5)))
    return out


@pytest.mark.parametrize("name", ["", "  ", "../x", "a/b", "x" * 65, "-lead", "ca\u0301r", "tab\tname"])
def test_tag_names_are_checked(name):
    with pytest.raises(WorkspaceError):
        tag_id(name)


def test_tag_ids_from_names():
    assert tag_id(" Car Chase ") == "car-chase" and tag_id("kid_safe-2") == "kid_safe-2"


def test_labels_round_trip_and_fit_a_normal_head(store_truth, tmp_path):
    store, truth = store_truth
    ws = Workspace(tmp_path / "ws", store, "contextual", probe=FAST_TAGS)
    ws.create("Tense scene")
    with pytest.raises(WorkspaceError, match="exists"):
        ws.create("tense scene")
    clips = _shot_clips(truth)
    for title, a, b, y in clips[:4]:
        ws.set_label("tense-scene", title, a, b, y)
    with pytest.raises(WorkspaceError, match="more"):  # too few to fit, and it says how many more
        ws.fit_now("tense-scene")
    for title, a, b, y in clips[4:]:
        ws.set_label("tense-scene", title, a, b, y)
    ws.set_label("tense-scene", *clips[0][:3], None)  # removed again
    rows = read_labels(tmp_path / "ws" / "tags" / "tense-scene" / "labels.csv")  # the documented format
    assert len(rows) == len(clips) - 1 and {r.label for r in rows} == {"0", "1"}
    summary = ws.fit_now("tense-scene")
    assert summary["fitted"]["metric"] == "ap" and summary["fitted"]["n_labels"] == len(clips) - 1
    assert summary["changed_since_fit"] == 0 and summary["fit"]["state"] == "done"
    # the head is a normal head folder: `mediafm tag` / the Python API apply it as it is
    head = load_head(tmp_path / "ws" / "tags" / "tense-scene" / "head")
    assert head.card.task == "binary" and head.card.embedding.kind == "contextual"
    assert len(apply_tag(store.root, head, titles=["title00"])) > 0
    # predictions over the catalog: no labelled clip among them; suggestions spread over titles
    top = ws.top("tense-scene", 8)
    assert len(top) == 8 and all(x["score"] >= y["score"] for x, y in itertools.pairwise(top))
    labelled = {(r.clip.title, round(r.clip.start, 3)) for r in rows}
    assert not any((c["title"], round(c["start"], 3)) in labelled for c in top)
    sug = ws.suggestions("tense-scene", 5)
    assert len(sug) == 5 and len({c["title"] for c in sug}) == 5
    scores = ws.title_scores("tense-scene", "title01")
    assert len(scores["shots"]) == len(truth["title01"].starts)
    # a new label after the fit is counted; a fresh Workspace over the folder finds everything
    ws.set_label("tense-scene", *clips[0][:3], 1)
    again = Workspace(tmp_path / "ws", store, "contextual")
    s = again.summary("tense-scene")
    assert s["positives"] + s["negatives"] == len(clips) and s["changed_since_fit"] == 1
    assert s["fitted"]["value"] == summary["fitted"]["value"]


def test_bad_clips_are_refused_with_a_message(store_truth, tmp_path):
    store, truth = store_truth
    ws = Workspace(tmp_path / "ws", store)
    ws.create("x")
    end = float(truth["title00"].ends[-1])
    for title, a, b, what in (("nope", 0, 1, "no title"), ("../title00", 0, 1, "no title"),
                              ("title00", end + 5, end + 6, "outside"), ("title00", 3, 2, "start < end"),
                              ("title00", float("nan"), 2, "start < end")):
        with pytest.raises(WorkspaceError, match=what):
            ws.set_label("x", title, a, b, 1)
    with pytest.raises(KeyError):
        ws.set_label("../x", "title00", 0, 1, 1)
    assert ws.labels("x") == []


def test_two_writers_lose_nothing_and_a_failed_save_keeps_the_labels(store_truth, tmp_path, monkeypatch):
    store, truth = store_truth
    ws = Workspace(tmp_path / "ws", store)
    ws.create("both")
    clips = _shot_clips(truth, per_title=8)

    def label(part):
        for title, a, b, y in part:
            ws.set_label("both", title, a, b, y)

    threads = [threading.Thread(target=label, args=(clips[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f = tmp_path / "ws" / "tags" / "both" / "labels.csv"
    assert len(read_labels(f)) == len(clips)
    before = f.read_bytes()

    def killed(*a, **k):
        raise KeyboardInterrupt  # as a kill between writing the temp file and moving it into place

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ws.set_label("both", "title00", 0.0, 0.5, 1)
    assert f.read_bytes() == before and not list(f.parent.glob(".*.tmp"))


# ----------------------------------------------------------------------------- the API
@pytest.fixture()
def client(store_truth, tmp_path, monkeypatch):
    import mediafm.serve.workspace as wsmod

    store, truth = store_truth
    monkeypatch.setattr(wsmod.Workspace, "__init__", _fast_init(wsmod.Workspace.__init__))
    app = create_app(store.root, ServeConfig(workspace=str(tmp_path / "ws")))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c, truth


def _fast_init(init):
    def wrapped(self, root, store, embedding="fused", probe=None, model_id=None):
        init(self, root, store, embedding, FAST_TAGS, model_id)
    return wrapped


JSON = {"content-type": "application/json"}


def _wait_fit(c, tag):
    for _ in range(600):
        s = c.get(f"/api/tags/{tag}").json()
        if s["fit"]["state"] != "running":
            return s
        time.sleep(0.05)
    raise AssertionError("fit did not finish")


def test_the_loop_through_the_api(client):
    c, truth = client
    assert c.get("/api/tags").json()["embedding"] == "contextual"
    r = c.post("/api/tags", json={"name": "Tense scene"}, headers={"origin": "http://127.0.0.1:8000"})
    assert r.status_code == 201 and r.json()["tag"] == "tense-scene"
    clips = _shot_clips(truth)
    for title, a, b, y in clips[:3]:
        assert c.put("/api/tags/tense-scene/labels", json={"title": title, "start": a, "end": b, "answer": y}).status_code == 200
    r = c.post("/api/tags/tense-scene/fit", headers=JSON)
    assert r.status_code == 422 and "more" in r.json()["detail"]  # says how many more are needed
    for title, a, b, y in clips[3:]:
        c.put("/api/tags/tense-scene/labels", json={"title": title, "start": a, "end": b, "answer": y})
    assert c.get("/api/tags/tense-scene/top").status_code == 422  # before a fit: a message, not a 500
    assert c.post("/api/tags/tense-scene/fit", headers=JSON).status_code == 202
    s = _wait_fit(c, "tense-scene")
    assert s["fit"]["state"] == "done" and s["fitted"]["metric"] == "ap", s
    top = c.get("/api/tags/tense-scene/top?k=5").json()
    assert len(top["clips"]) == 5
    sug = c.get("/api/tags/tense-scene/suggestions?k=3").json()["clips"]
    first = sug[0]
    c.put("/api/tags/tense-scene/labels", json={"title": first["title"], "start": first["start"],
                                                "end": first["end"], "answer": 1})
    assert c.get("/api/tags/tense-scene").json()["changed_since_fit"] == 1
    per = c.get("/api/tags/tense-scene/titles/title02").json()
    assert len(per["shots"]) == len(truth["title02"].starts)
    assert c.get("/api/tags/tense-scene/titles/..%2Fx").status_code == 404
    assert c.get("/api/tags/nope/labels").status_code == 404
    assert c.get("/api/tags/..%2Fetc/labels").status_code in (404, 422)


@pytest.mark.parametrize("headers,status", [
    ({"origin": "http://evil.example"}, 403),
    ({"origin": "null"}, 403),
    ({"origin": "http://127.0.0.1:9999"}, 403),  # another port is another origin
    ({"sec-fetch-site": "cross-site"}, 403),
    ({"sec-fetch-site": "same-site"}, 403),
    ({"host": "evil.example"}, 400),  # DNS rebinding: a name this server is not served under
    ({"content-type": "text/plain"}, 415),
])
def test_cross_site_writes_are_refused(client, headers, status):
    c, _ = client
    body = json.dumps({"name": "evil"})
    r = c.post("/api/tags", content=body, headers={"content-type": "application/json", **headers})
    assert r.status_code == status
    assert "evil" not in [t["tag"] for t in c.get("/api/tags").json()["tags"]]


def test_bad_requests_get_messages_not_500s(client):
    c, truth = client
    c.post("/api/tags", json={"name": "ok"})
    for body in ({"name": ""}, {"name": "../../etc"}, {"name": "x" * 100}, {}):
        r = c.post("/api/tags", json=body)
        assert r.status_code == 422, body
    end = float(truth["title00"].ends[-1])
    for body in ({"title": "title00", "start": end + 10, "end": end + 11, "answer": 1},
                 {"title": "missing", "start": 0, "end": 1, "answer": 1},
                 {"title": "title00", "start": 0, "end": 1, "answer": 7},
                 {"title": "title00", "start": 2, "end": 1, "answer": 1}):
        assert c.put("/api/tags/ok/labels", json=body).status_code == 422, body
    huge = json.dumps({"title": "title00", "start": 0, "end": 1, "answer": 1, "pad": "x" * 20000})
    assert c.put("/api/tags/ok/labels", content=huge, headers=JSON).status_code == 413
    assert c.get("/api/tags/ok/labels").json() == []


def test_a_named_model_is_what_tags_are_fitted_on_when_the_store_holds_several(tmp_path):
    """A store re-embedded with a second model: the explorer's `--model` names one, and the tag
    loop fits on that model's contextual vectors (not on fused ones, and without an error)."""
    from mediafm.serve.workspace import resolve_embedding

    store, truth = scene_store(tmp_path / "store", n_titles=6, seed=3)
    for tid in store.title_ids():  # the second model's table: other vectors of the same shots
        v = store.contextual(tid, "fixture-model")
        store.write_contextual("second-model", tid, -v, np.zeros(v.shape[1], np.float32), {"model_id": "second-model"})
    assert sorted(store.model_ids()) == ["fixture-model", "second-model"]
    assert resolve_embedding(store) == "fused" and resolve_embedding(store, "second-model") == "contextual"
    ws = Workspace(tmp_path / "ws", store, "contextual", probe=FAST_TAGS, model_id="second-model")
    ws.create("t")
    for title, a, b, y in _shot_clips(truth):
        ws.set_label("t", title, a, b, y)
    ws.fit_now("t")
    head = ws.head("t")
    assert head.card.embedding.kind == "contextual" and head.card.embedding.model_id == "second-model"
    t = ws.shot_table()
    assert np.allclose(t.vectors[:3], -store.contextual(t.titles[0], "fixture-model")[:3], atol=1e-2)
    assert ws.top("t")
    other = Workspace(tmp_path / "ws", store, "contextual", probe=FAST_TAGS, model_id="fixture-model")
    with pytest.raises(WorkspaceError, match="of model second-model.*of model fixture-model.*fit it again"):
        other.top("t")


def test_a_stale_head_is_reported(store_truth, tmp_path, monkeypatch):
    store, truth = store_truth
    ws = Workspace(tmp_path / "ws", store, "contextual", probe=FAST_TAGS)
    ws.create("t")
    for title, a, b, y in _shot_clips(truth):
        ws.set_label("t", title, a, b, y)
    ws.fit_now("t")
    assert ws.top("t")
    # another model embedded the store since the fit: same width, another space
    monkeypatch.setattr(ws.store, "_only_model", lambda: "another-model")
    with pytest.raises(WorkspaceError, match="fitted on contextual embeddings of model fixture-model.*fit it again"):
        ws.top("t")
    monkeypatch.undo()
    # the catalog's vectors change width: the head cannot score them
    ws._table = ll.ShotTable.build([("title00", np.zeros(2), np.ones(2), np.ones((2, 3), np.float32))])
    ws._table_key = ws._store_key()
    ws._scores.clear()
    with pytest.raises(WorkspaceError, match="no longer fits.*fit it again"):
        ws.top("t")


def test_unsure_means_probability_one_half_for_a_logistic_head():
    from types import SimpleNamespace

    from mediafm.apps.head import TrainedHead

    lin = LinearHead(np.zeros(2), np.ones(2), np.ones(2), np.asarray(0.0), "sigmoid")
    card = SimpleNamespace(thresholds=(0.8,))
    assert ll.decision_threshold(TrainedHead(card, lin)) == 0.5
    ridge = LinearHead(np.zeros(2), np.ones(2), np.ones(2), np.asarray(0.0), "identity")
    assert ll.decision_threshold(TrainedHead(card, ridge)) == 0.8
    assert ll.decision_threshold(TrainedHead(SimpleNamespace(thresholds=(float("inf"),)), ridge)) == 0.5
