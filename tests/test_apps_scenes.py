"""Scene segmentation: pure parts, and the store-level result against known scenes."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.apps import fit, scene_cuts, scenes
from mediafm.apps import segmentation as sc
from mediafm.evaluation.labels import write_labels
from mediafm.evaluation.metrics import average_precision
from mediafm_testing.scenes import FAST_PROBE, clip_labels, scene_store


def test_depth_and_peaks():
    change = np.array([0.1, 0.5, 0.2, 0.2, 0.9, 0.3])
    d = sc.depth(change)
    assert d[1] == pytest.approx((0.5 - 0.1) + (0.5 - 0.2)) and d[4] == pytest.approx((0.9 - 0.2) + (0.9 - 0.3))
    assert d[0] == 0 and d[2] == 0
    # TextTiling's cutoff: positive depths 0.7 and 1.3 -> mean 1.0 - std 0.3 / 2 = 0.85
    assert sc.pick_boundaries(d).tolist() == [4]
    assert sc.pick_boundaries(d, threshold=0.5).tolist() == [1, 4]
    assert sc.pick_boundaries(np.zeros(5)).tolist() == []


def test_targets_and_scene_ids():
    cuts = np.array([2.0, 4.0, 6.0, 8.0])
    assert sc.boundary_targets(cuts, [4.2, 7.9, 20.0], 0.5).tolist() == [0, 1, 0, 1]
    assert sc.scene_of_shot(5, np.array([1, 3])).tolist() == [0, 0, 1, 1, 2]


def test_window_means_average_out_shot_reverse_shot():
    rng = np.random.default_rng(0)
    place, a, b = rng.normal(size=(3, 32))
    other, c, d = rng.normal(size=(3, 32))
    v = np.stack([place + a, place + b, place + a, place + b, other + c, other + d, other + c, other + d])
    s = sc.boundary_scores(v, 2)
    assert s.argmax() == 3 and np.sort(s)[-2] < 0.5 * s[3]  # alternating shots inside a scene average out


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    store, truth = scene_store(root / "store", n_titles=16, seed=3)
    return root, store, truth, clip_labels(truth, root / "labels")


def _truth_targets(cuts, truth):
    return np.concatenate([sc.boundary_targets(g["time_s"].to_numpy(), truth[t].scene_starts, 0.01)
                           for t, g in cuts.groupby("title", sort=True)])


@pytest.mark.parametrize("embedding", ["fused", "contextual"])
def test_segmentation_beats_the_neighbour_cosine_baseline(catalog, embedding):
    root, store, truth, labels = catalog
    cuts = scene_cuts(store.root, embedding=embedding).sort_values(["title", "shot"])
    y = _truth_targets(cuts, truth)
    baseline = np.concatenate([sc.neighbour_change(store.features(t) if embedding == "fused" else store.contextual(t))
                               for t in sorted(truth)])
    ap, ap_base = average_precision(y, cuts["score"].to_numpy()), average_precision(y, baseline)
    assert ap > ap_base + 0.15, (ap, ap_base)
    picked = cuts["boundary"].to_numpy()
    precision, recall = y[picked].mean(), picked[y == 1].mean()
    assert precision > 0.6 and recall > 0.6, (precision, recall)


def test_scene_head_learns_boundaries_and_groups_shots(catalog, tmp_path):
    root, store, truth, labels = catalog
    train = sorted(truth)[:10]
    rows = [r for r in (labels / "scenes.csv").read_text().splitlines()[1:] if r.split(",")[0] in train]
    write_labels(tmp_path / "scenes.csv", [(a, float(b), float(c), d) for a, b, c, d in (r.split(",") for r in rows)])
    res = fit(store.root, tmp_path / "scenes.csv", "scenes", "fused", config=FAST_PROBE)
    assert res.head.card.task == "scenes" and res.head.card.window == sc.DEFAULT_WINDOW
    assert res.targets.y.sum() == sum(len(truth[t].scene_starts) for t in train)
    test = sorted(truth)[10:]
    cuts = scene_cuts(store.root, titles=test, head=res.head)
    y = _truth_targets(cuts, truth)
    baseline = np.concatenate([sc.neighbour_change(store.features(t)) for t in test])
    assert average_precision(y, cuts["score"].to_numpy()) > average_precision(y, baseline) + 0.15
    table = scenes(store.root, titles=test, head=res.head)
    for t, g in table.groupby("title"):
        n = len(truth[t].starts)
        assert g["first_shot"].iloc[0] == 0 and g["last_shot"].iloc[-1] == n - 1
        assert (g["first_shot"].to_numpy()[1:] == g["last_shot"].to_numpy()[:-1] + 1).all()  # scenes tile the title
        assert g["n_shots"].sum() == n
