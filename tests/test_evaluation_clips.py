"""Clips: shot overlap, pooling, and the in-context vs isolated embedding kinds on a small store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mediafm.errors import StoreError
from mediafm.store.catalog import Store
from mediafm.evaluation.clips import (Clip, ClipEmbedder, clip_shots, cut_distances, edge_readout, pool, pooled_dim,
                                     pooling_names, shot_dim)
from mediafm.types import TitleRecord

STARTS = np.array([0.0, 1.0, 2.5, 4.0])
ENDS = np.array([1.0, 2.5, 4.0, 6.0])


def test_clip_shots_overlap_and_seconds():
    idx, ov = clip_shots(STARTS, ENDS, Clip("t", 0.5, 3.0))
    assert list(idx) == [0, 1, 2]
    np.testing.assert_allclose(ov, [0.5, 1.5, 0.5])
    # touching a boundary is not overlapping: [1.0, 2.5) holds exactly shot 1
    assert list(clip_shots(STARTS, ENDS, Clip("t", 1.0, 2.5))[0]) == [1]
    # past the end: the nearest shot, with zero overlap
    idx, ov = clip_shots(STARTS, ENDS, Clip("t", 10.0, 11.0))
    assert list(idx) == [3] and list(ov) == [0.0]


def test_poolings():
    v = np.array([[0.0, 2.0], [4.0, 0.0]])
    np.testing.assert_allclose(pool(v, np.array([1.0, 3.0]), "mean"), [2.0, 1.0])
    np.testing.assert_allclose(pool(v, np.array([1.0, 3.0]), "max"), [4.0, 2.0])
    np.testing.assert_allclose(pool(v, np.array([1.0, 3.0]), "duration"), [3.0, 0.5])
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(v, np.ones(2), "median")


def test_edge_readout_sees_the_shot_after_the_clip_and_not_a_far_one():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(12, 5)).astype(np.float32)
    idx = np.arange(3, 7)  # shots 3-6: the cut after it is before shot 7
    out = edge_readout(v, idx)
    assert out.shape == (2 * 5 + 4,)
    np.testing.assert_allclose(out[:5], v[6])  # its last shot
    np.testing.assert_allclose(out[5:10], np.abs(v[6] - v[7]), rtol=1e-6)  # the change across the cut
    cos = lambda a, b: 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    np.testing.assert_allclose(out[10:], [cos(v[6], v[7]), cos(v[5:7].mean(0), v[7:9].mean(0)),
                                          cos(v[2], v[3]), cos(v[1:3].mean(0), v[3:5].mean(0))], rtol=1e-5)
    after, far = v.copy(), v.copy()
    after[7] += 1.0
    far[11] += 1.0
    assert not np.allclose(edge_readout(after, idx), out)
    np.testing.assert_array_equal(edge_readout(far, idx), out)
    # at the title's end, nothing after it: zeros, not an error
    end = edge_readout(v, np.arange(9, 12))
    assert np.all(end[5:10] == 0) and end[10] == end[11] == 0 and end[12] > 0


def test_edges_pooling_appends_the_readout(store):
    clip = Clip("a", 0.5, 3.0)  # shots 0-2 of 4
    fused = store.features("a", "fused")
    out = ClipEmbedder(store, "fused", "mean+edges").embed(clip)
    np.testing.assert_allclose(out, np.concatenate([fused[:3].mean(0), edge_readout(fused, np.arange(3))]), rtol=1e-6)
    assert "mean+edges" in pooling_names() and "mean" in pooling_names()
    isolated = ClipEmbedder(store, "contextual-isolated", "mean+edges", model=CumsumModel()).embed(clip)
    assert np.all(isolated[2 * fused.shape[1]:3 * fused.shape[1]] == 0)  # embedded alone: no shot after it
    with pytest.raises(ValueError, match="unknown pooling"):
        ClipEmbedder(store, "fused", "median+edges")


class CumsumModel:
    """A 'contextual' model whose output at shot i depends on every earlier shot of its input."""

    class config:  # noqa: N801 - mimics MediaFM.config
        time_features = False

    def embed_title(self, fused, meta=None, times=None):
        return np.cumsum(np.asarray(fused), axis=0)


@pytest.fixture()
def store(tmp_path):
    st = Store(tmp_path / "store", create=True)
    rng = np.random.default_rng(0)
    for tid in ("a", "b"):
        shots = pd.DataFrame({"title_id": tid, "shot_index": range(4), "start_frame": [0, 10, 25, 40],
                              "end_frame": [9, 24, 39, 59], "start_s": STARTS, "end_s": ENDS,
                              "text": "", "text_source": ""})
        st.write_title(TitleRecord(title_id=tid, path=f"{tid}.mp4", source_key=tid, n_shots=4), shots, None, None)
        video, audio = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
        st.write_features(tid, {"video": video, "audio": audio, "fused": np.concatenate([video, audio], 1)},
                          {"video": {"name": "v"}, "audio": {"name": "a"}})
    return st


def test_stored_kinds_pool_their_shots(store):
    clip = Clip("a", 0.5, 3.0)
    v = store.features("a", "video")
    np.testing.assert_allclose(ClipEmbedder(store, "video", "mean").embed(clip), v[:3].mean(0), rtol=1e-6)
    np.testing.assert_allclose(ClipEmbedder(store, "fused", "max").embed(clip), store.features("a", "fused")[:3].max(0), rtol=1e-6)
    assert ClipEmbedder(store, "audio", "mean").embed_many([clip, Clip("b", 4.5, 5.0)]).shape == (2, 2)
    # the default read-out: the mean and the four cut distances around the clip
    out = ClipEmbedder(store, "video").embed(clip)
    np.testing.assert_allclose(out, np.concatenate([v[:3].mean(0), cut_distances(v, np.arange(3))]), rtol=1e-6)


def test_in_context_vs_isolated(store):
    fused = store.features("a", "fused")
    clip = Clip("a", 1.2, 3.5)  # shots 1 and 2
    model = CumsumModel()
    in_context = ClipEmbedder(store, "contextual", "mean", model=model).embed(clip)
    isolated = ClipEmbedder(store, "contextual-isolated", "mean", model=model).embed(clip)
    full = np.cumsum(fused, 0)
    np.testing.assert_allclose(in_context, full[1:3].mean(0), rtol=1e-5)  # sees shot 0 as context
    np.testing.assert_allclose(isolated, np.cumsum(fused[1:3], 0).mean(0), rtol=1e-5)  # sees only its shots
    assert not np.allclose(in_context, isolated)


def test_contextual_reads_the_store_table(store):
    emb = np.arange(8, dtype=np.float32).reshape(4, 2)
    store.write_contextual("m1", "a", emb, np.zeros(2), {"name": "m1"})
    out = ClipEmbedder.open(store.root, "contextual", pooling="mean").embed(Clip("a", 4.0, 6.0))
    np.testing.assert_allclose(out, emb[3])


def test_errors(store):
    with pytest.raises(StoreError, match="not in the store"):
        ClipEmbedder(store, "video").embed(Clip("zzz", 0, 1))
    with pytest.raises(StoreError, match="need a model"):
        ClipEmbedder(store, "contextual-isolated")
    with pytest.raises(ValueError, match="unknown embedding"):
        ClipEmbedder(store, "pixels")


def test_cuts_pooling_appends_the_four_cut_distances_only(store):
    """`+cuts`: the pooled vector and the distances across the cuts either side of the clip (the
    edge read-out's last four numbers); a far shot leaves them as they are."""
    clip = Clip("a", 0.5, 3.0)  # shots 0-2 of 4
    fused = store.features("a", "fused")
    out = ClipEmbedder(store, "fused", "mean+cuts").embed(clip)
    D = fused.shape[1]
    assert out.shape == (pooled_dim(D, "mean+cuts"),) == (D + 4,) and shot_dim(D + 4, "mean+cuts") == D
    np.testing.assert_allclose(out[:D], fused[:3].mean(0), rtol=1e-6)
    np.testing.assert_allclose(out[D:], edge_readout(fused, np.arange(3))[-4:], rtol=1e-6)
    assert out[D] > 0  # the cut after shot 2 is inside the title
    rng = np.random.default_rng(2)
    v = rng.normal(size=(12, 5)).astype(np.float32)
    base = cut_distances(v, np.arange(3, 7))
    after, far = v.copy(), v.copy()
    after[8] += 1.0  # second shot after the clip: the two-shot distance sees it
    far[11] += 1.0
    assert not np.allclose(cut_distances(after, np.arange(3, 7)), base)
    np.testing.assert_array_equal(cut_distances(far, np.arange(3, 7)), base)
    assert {"mean+cuts", "max+cuts", "mean+edges"} <= set(pooling_names())
    with pytest.raises(ValueError, match="unknown pooling"):
        ClipEmbedder(store, "fused", "median+cuts")


def test_near_pooling_appends_the_mean_of_the_shots_around_the_clip(store):
    """`+near+cuts`: the pooled vector, the mean of the clip's shots and NEAR_RADIUS shots either
    side, and the cut distances; a shot past that reach changes nothing, one within it does."""
    from mediafm.evaluation.clips import NEAR_RADIUS, near_readout

    rng = np.random.default_rng(3)
    v = rng.normal(size=(14, 5)).astype(np.float32)
    idx = np.arange(5, 8)
    out = near_readout(v, idx)
    assert out.shape == (5 + 4,)
    np.testing.assert_allclose(out[:5], v[5 - NEAR_RADIUS:8 + NEAR_RADIUS].mean(0), rtol=1e-5)
    np.testing.assert_array_equal(out[5:], cut_distances(v, idx))
    inside, far = v.copy(), v.copy()
    inside[8 + NEAR_RADIUS - 1] += 1.0
    far[8 + NEAR_RADIUS] += 1.0
    far[5 - NEAR_RADIUS - 1] += 1.0
    assert not np.allclose(near_readout(inside, idx), out)
    np.testing.assert_array_equal(near_readout(far, idx), out)
    np.testing.assert_allclose(near_readout(v, np.arange(0, 2))[:5], v[:2 + NEAR_RADIUS].mean(0), rtol=1e-5)  # title start

    clip = Clip("a", 0.5, 3.0)  # shots 0-2 of 4
    fused = store.features("a", "fused")
    D = fused.shape[1]
    got = ClipEmbedder(store, "fused", "mean+near+cuts").embed(clip)
    assert got.shape == (pooled_dim(D, "mean+near+cuts"),) == (2 * D + 4,) and shot_dim(2 * D + 4, "mean+near+cuts") == D
    np.testing.assert_allclose(got[:D], fused[:3].mean(0), rtol=1e-6)
    np.testing.assert_allclose(got[D:2 * D], fused[:4].mean(0), rtol=1e-6)
    assert "mean+near+cuts" in pooling_names()
    assert ClipEmbedder(store, "fused", "max+near+cuts").embed(clip).shape == (2 * D + 4,)


def test_blocks_name_the_parts_of_each_embedding():
    from mediafm.model.transformer import small

    enc = {"video": {"dim": 1280}, "audio": {"dim": 1024}, "text": {"dim": 384}, "descriptors": {"dim": 17},
           "fusion": {}}

    class Records:
        def feature_encoders(self, title):
            return enc

    class Model:
        config = small(2705, 384)  # the default read-out, stack+title+input

    fused = ClipEmbedder(Records(), "fused", "mean+cuts")
    assert fused.blocks(2705 + 4, "t") == (1280, 1024, 384, 17, 4)
    assert ClipEmbedder(Records(), "fused", "mean").blocks(2705, "t") == (1280, 1024, 384, 17)
    assert ClipEmbedder(Records(), "audio", "mean+cuts").blocks(1028, "t") == (1024, 4)
    ctx = ClipEmbedder(Records(), "contextual", "mean+edges", model=Model())
    d = Model.config.embed_dim
    assert d == 2705 + 5 * 256
    assert ctx.blocks(3 * d + 4, "t") == (1280, 1024, 384, 17, 1024, 256) * 3 + (4,)
    near = ClipEmbedder(Records(), "fused", "mean+near+cuts")
    assert near.blocks(2 * 2705 + 4, "t") == (1280, 1024, 384, 17) * 2 + (4,)
    # Records that do not add up to the width: one part (plain standardisation).
    assert fused.blocks(100 + 4, "t") == (100, 4)
    assert ClipEmbedder(Records(), "contextual", "mean", model=Model()).blocks(999, "t") == (999,)
