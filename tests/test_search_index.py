"""Vector index and queries: self-first shot search, incremental updates, IVF recall, montage text."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.cli.main import main
from mediafm.errors import StoreError
from mediafm.search import IndexConfig, open_index, search_clip, search_shot, search_text, update_index
from mediafm_testing.stores import add_montage_title, add_random_title, clustered_vectors
from mediafm.search.index import build_ivf, read_info, recall_at_k, tune_nprobe
from mediafm.store.catalog import Store


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "store", create=True)
    for i, n in enumerate((30, 45, 12)):
        add_random_title(s, f"title{i}", n, dim=48, seed=i)
    return s


@pytest.fixture(scope="module")
def montage_store(tmp_path_factory, shared_media):
    s = Store(tmp_path_factory.mktemp("montage") / "store", create=True)
    add_montage_title(s, shared_media)
    add_random_title(s, "other", 25, dim=192, seed=3)
    return s


def test_shot_query_returns_the_shot_itself_first(store):
    index = open_index(store)
    for tid, idx in [("title0", 0), ("title1", 44), ("title2", 5)]:
        hits = search_shot(store, index, tid, idx, k=10)
        assert (hits[0].title_id, hits[0].shot_index) == (tid, idx)
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert len(hits) == 10
        assert len({(h.title_id, h.shot_index) for h in hits}) == 10
        assert all(a.score >= b.score for a, b in zip(hits[1:], hits[2:]))


def test_shot_query_neighbours_match_brute_force(store):
    index = open_index(store)
    all_v = {t: store.features(t) for t in store.title_ids()}
    keys = [(t, i) for t in sorted(all_v) for i in range(len(all_v[t]))]
    mat = np.concatenate([all_v[t] for t in sorted(all_v)])
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    q = mat[keys.index(("title1", 7))]
    expected = [keys[j] for j in np.argsort(-(mat @ q))[:6]]
    got = [(h.title_id, h.shot_index) for h in search_shot(store, index, "title1", 7, k=6)]
    assert got == expected


def test_incremental_update_adds_removes_and_reencodes(store):
    info = update_index(store, progress=False)
    assert info.n_vectors == 87 and info.kind == "flat"
    gen = info.generation
    assert update_index(store, progress=False).generation == gen  # nothing changed: no rewrite
    add_random_title(store, "title3", 10, dim=48, seed=9)
    info = update_index(store, progress=False)
    assert info.n_vectors == 97 and "title3" in info.titles and info.generation != gen
    # re-encoded: new vectors for title0 replace the old ones
    store.write_features("title0", {"fused": clustered_vectors(30, 48, seed=77)}, encoders={})
    info = update_index(store, progress=False)
    assert info.n_vectors == 97
    hits = search_shot(store, open_index(store), "title0", 3, k=3)
    assert hits[0].shot_index == 3
    # removed title: its rows go away
    (store.root / "titles" / "title2.parquet").unlink()
    info = update_index(store, progress=False)
    assert info.n_vectors == 85 and "title2" not in info.titles
    index = open_index(store)
    assert all(t != "title2" for t, _, _ in index.search(store.features("title1")[:5], 20)[0])
    # only the current generation's files remain
    files = sorted(p.name for p in (store.root / "index" / "fused").iterdir())
    assert files == sorted(["manifest.json", f"faiss-{info.generation}.index", f"rows-{info.generation}.parquet"])


def test_index_switches_to_ivf_above_the_threshold(tmp_path):
    s = Store(tmp_path / "store", create=True)
    for i in range(4):
        add_random_title(s, f"t{i}", 600, dim=32, seed=i, with_frames=False)
    config = IndexConfig(exact_max=1000)
    info = update_index(s, config, progress=False)
    assert info.kind == "ivf" and info.nprobe >= 1 and info.recall_at_10 >= config.target_recall
    index = open_index(s, config)
    hits = search_shot(s, index, "t2", 100, k=5)
    assert (hits[0].title_id, hits[0].shot_index) == ("t2", 100)
    # incremental add into the IVF index keeps it IVF (growth below the retrain factor)
    add_random_title(s, "t4", 300, dim=32, seed=8, with_frames=False)
    info2 = update_index(s, config, progress=False)
    assert info2.kind == "ivf" and info2.n_vectors == 2700 and info2.n_trained == 2400


def test_ivf_recall_at_10_on_100k_vectors():
    import faiss

    faiss.omp_set_num_threads(2)
    x = clustered_vectors(100_000, 64, seed=1)
    config = IndexConfig()
    index = build_ivf(x, config)
    index.add(x)
    nprobe, tuned = tune_nprobe(index, x, config)
    # fresh queries (not the tuning sample): perturbed stored vectors
    rng = np.random.default_rng(5)
    q = x[rng.choice(len(x), 300, replace=False)] + 0.05 * rng.standard_normal((300, 64)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    flat = faiss.IndexFlatIP(64)
    flat.add(x)
    _, exact = flat.search(q, 10)
    index.nprobe = nprobe
    _, approx = index.search(q, 10)
    recall = recall_at_k(approx, exact)
    assert recall >= 0.95, (nprobe, tuned, recall)
    assert nprobe < index.nlist  # it is approximate, not a disguised full scan


def test_recall_at_k_counts_overlap():
    exact = np.array([[1, 2, 3, 4]])
    assert recall_at_k(np.array([[4, 3, 9, -1]]), exact) == 0.5
    assert recall_at_k(exact, exact) == 1.0


def test_text_query_with_subtitle_words_finds_that_shot(montage_store, montage_truth):
    shots = montage_store.shots("montage")
    for cue in montage_truth["speech"]:
        mid = (cue["start_s"] + cue["end_s"]) / 2
        want = int(shots[(shots.start_s <= mid) & (shots.end_s > mid)].shot_index.iloc[0])
        words = cue["text"].split()
        query = " ".join(words[1:6])  # a fragment of the line, not the whole cue
        hits = search_text(montage_store, query, k=3)
        assert (hits[0].title_id, hits[0].shot_index) == ("montage", want), (query, hits)


def test_text_query_paraphrase_ranks_the_right_shot_first(montage_store):
    hits = search_text(montage_store, "a plea to citizens to serve their nation", k=5)
    assert hits[0].title_id == "montage" and "country" in hits[0].text


def test_text_query_matches_tags(montage_store):
    # "other" has ImageNet/AudioSet-style tags and random subtitle words
    hits = search_text(montage_store, "volcano", k=5)
    assert hits and all("volcano" in h.text or h.title_id == "other" for h in hits)
    tags = montage_store.feature_table("other", ["video_tags"]).to_pydict()["video_tags"]
    assert "volcano" in tags[hits[0].shot_index]


def test_clip_query_weights_overlapping_shots(montage_store):
    index = open_index(montage_store)
    shots = montage_store.shots("montage")
    a, b = float(shots.start_s[4]), float(shots.end_s[4])
    hits = search_clip(montage_store, index, "montage", a + 0.1, b - 0.1, k=3)
    assert (hits[0].title_id, hits[0].shot_index) == ("montage", 4)
    with pytest.raises(StoreError):
        search_clip(montage_store, index, "montage", 500.0, 600.0)


def test_cli_index_and_search(montage_store, capsys):
    root = str(montage_store.root)
    assert main(["index", root]) == 0
    assert read_info(montage_store.root / "index" / "fused").n_vectors == 40
    capsys.readouterr()
    assert main(["search", root, "--shot", "montage:4", "--k", "3", "--format", "json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert [(h["title_id"], h["shot_index"]) for h in out][:1] == [("montage", 4)]
    assert set(out[0]) == {"title_id", "shot_index", "start_s", "end_s", "score", "text"}
    assert main(["search", root, "--text", "fellow Americans", "--k", "2"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[1].split()[2:4] == ["montage", "4"]
    assert main(["search", root, "--clip", "montage:30-31.5"]) == 0
    assert main(["search", root, "--shot", "montage:999"]) == 1
    assert main(["search", root, "--shot", "missing:1"]) == 1
    assert main(["search", root, "--clip", "montage:5-2"]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["search", root, "--embedding", "contextual", "--shot", "montage:1"]) == 1


def test_contextual_embeddings_get_their_own_index(store):
    for i, tid in enumerate(store.title_ids()):
        n = len(store.shots(tid))
        store.write_contextual("m1", tid, clustered_vectors(n, 24, seed=40 + i), np.zeros(24, np.float32), {"name": "m1"})
    config = IndexConfig(embedding="contextual")
    index = open_index(store, config)
    assert index.info.name == "contextual-m1" and index.dim == 24 and len(index) == 87
    hits = search_shot(store, index, "title1", 9, k=4)
    assert (hits[0].title_id, hits[0].shot_index) == ("title1", 9)
    assert (store.root / "index" / "contextual-m1" / "manifest.json").exists()
    assert open_index(store).dim == 48  # the fused index is separate
    store.write_contextual("m2", "title0", clustered_vectors(30, 24, seed=1), np.zeros(24, np.float32), {"name": "m2"})
    with pytest.raises(StoreError, match="--model"):
        open_index(store, config)
    assert len(open_index(store, IndexConfig(embedding="contextual", model_id="m2"))) == 30


def test_text_query_matches_frames_through_a_clip_text_tower(tmp_path):
    s = Store(tmp_path / "store", create=True)
    add_random_title(s, "t", 10, dim=16, seed=1)
    video = clustered_vectors(10, 8, seed=2)
    s.write_features("t", {"fused": s.features("t"), "video": video}, encoders={})

    class FakeClip:  # stands in for user-supplied CLIP weights: "the query" looks like shot 6
        name = "fake-clip"

        def encode_text(self, texts):
            return np.repeat(video[6:7] * 3.0, len(texts), axis=0)

    class Blind:  # a text encoder for which the query is orthogonal to every shot text and tag
        name = "blind"

        def encode(self, texts):
            return np.array([[1.0, 0.0] if t == "a red kite" else [0.0, 1.0] for t in texts], np.float32)

    without = search_text(s, "a red kite", k=3, encoder=Blind())
    hits = search_text(s, "a red kite", k=3, encoder=Blind(), frame_encoder=FakeClip())
    assert not without
    assert hits[0].shot_index == 6 and hits[0].score == pytest.approx(2.5, abs=1e-4)
