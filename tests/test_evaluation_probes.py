"""Probes: grouped CV prevents title leakage; shuffled labels score at chance; signal is found."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from mediafm.errors import ConfigError
from mediafm.evaluation.labels import Targets
from mediafm.evaluation.probes import PROBES, ProbeConfig, run_probe
from mediafm_testing.metrics import chance_level

FAST = ProbeConfig(folds=4, inner_folds=2, n_boot=200)


def _titles(n_titles=40, per=6, dim=32, seed=0):
    """Clips whose embeddings carry a strong per-title signature (like a title's look)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_titles), per)
    signature = rng.normal(0, 3, (n_titles, dim))
    X = signature[groups] + rng.normal(0, 0.5, (len(groups), dim))
    return rng, X, groups


def test_ridge_head_matches_sklearn_ridge():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 120)), rng.normal(size=80)
    predict = PROBES["ridge"](X, y, "rank", 1, (0.1,), FAST)[0]
    sc = StandardScaler().fit(X)
    ref = Ridge(alpha=10.0).fit(sc.transform(X), y)
    Z = rng.normal(size=(10, 120))
    np.testing.assert_allclose(predict(Z), ref.predict(sc.transform(Z)), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("head", sorted(PROBES))
def test_title_level_random_labels_give_chance_with_grouped_cv(head):
    # Labels constant within a title and random across titles: only memorising titles could score.
    rng, X, groups = _titles()
    y = rng.integers(0, 2, 40)[groups]
    res = run_probe(X, Targets("binary", y, ("0", "1")), groups, "ap", ProbeConfig(**{**FAST.__dict__, "head": head}))
    chance = chance_level("ap", y)
    assert res.score.value < chance + 0.15, (res.score, chance)
    assert res.score.low < chance < res.score.high or res.score.value < chance + 0.1


def test_leakage_would_be_caught_by_ungrouped_cv():
    # The same data split by clip instead of by title scores far above chance: the grouped test
    # above can therefore fail if grouping is lost.
    rng, X, groups = _titles()
    y = rng.integers(0, 2, 40)[groups]
    fake_groups = np.arange(len(y))  # every clip its own "title"
    res = run_probe(X, Targets("binary", y, ("0", "1")), fake_groups, "ap", FAST)
    assert res.score.value > chance_level("ap", y) + 0.3


@pytest.mark.parametrize("kind,metric", [("multiclass", "macro_ap"), ("multilabel", "micro_ap"),
                                         ("binary", "ap"), ("rank", "kendall_tau")])
def test_shuffled_labels_chance_real_labels_high(kind, metric):
    rng = np.random.default_rng(1)
    n_titles, per, dim = 30, 8, 20
    groups = np.repeat(np.arange(n_titles), per)
    X = rng.normal(size=(len(groups), dim))
    w = rng.normal(size=(dim, 3))
    z = X @ w
    if kind == "multiclass":
        y, classes = z.argmax(1), ("a", "b", "c")
    elif kind == "multilabel":
        y, classes = (z > 0.3).astype(int), ("a", "b", "c")
    elif kind == "binary":
        y, classes = (z[:, 0] > 0).astype(int), ("0", "1")
    else:
        y, classes = z[:, 0] + 0.1 * rng.normal(size=len(z)), ()
    real = run_probe(X, Targets(kind, y, classes), groups, metric, FAST).score
    shuffled_y = y[rng.permutation(len(y))]
    shuffled = run_probe(X, Targets(kind, shuffled_y, classes), groups, metric, FAST).score
    chance = chance_level(metric, shuffled_y)
    assert real.value > chance + 0.3
    assert abs(shuffled.value - chance) < 0.12, (shuffled, chance)


def test_out_of_fold_scores_cover_every_clip():
    rng, X, groups = _titles(n_titles=12, per=4)
    y = rng.integers(0, 3, len(groups))
    res = run_probe(X, Targets("multiclass", y, ("a", "b", "c")), groups, None, FAST)
    assert res.oof.shape == (len(y), 3)
    assert np.all(np.any(res.oof != 0, axis=1))
    assert len(res.chosen_c) == 4 and set(res.chosen_c) <= set(FAST.c_grid)


def test_too_few_titles_is_an_error():
    from mediafm.errors import ConfigError

    X = np.zeros((4, 3))
    with pytest.raises(ConfigError, match="at least 3 titles"):
        run_probe(X, Targets("rank", np.arange(4.0), ()), np.array([0, 0, 1, 1]))


@pytest.mark.parametrize("kind,n_classes", [("binary", 2), ("multiclass", 3), ("multiclass", 4), ("multilabel", 3)])
def test_logistic_linear_head_matches_sklearn(kind, n_classes):
    # The saved form of a logistic head (arrays + link) must score as sklearn's fitted model does,
    # including a class absent from training (multiclass with 4 classes, 3 seen) and 2-class softmax.
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(3)
    X, Z = rng.normal(size=(60, 7)), rng.normal(size=(9, 7))
    y = rng.integers(0, 2, (60, 3)) if kind == "multilabel" else rng.integers(0, min(n_classes, 3), 60)
    head = PROBES["logistic"](X, y, kind, n_classes, (0.5,), FAST)[0]
    lr = LogisticRegression(C=0.5, max_iter=FAST.max_iter)
    ref = make_pipeline(StandardScaler(), OneVsRestClassifier(lr) if kind == "multilabel" else lr).fit(X, y)
    p = ref.predict_proba(Z)
    if kind == "binary":
        p = p[:, 1]
    elif kind == "multiclass":
        full = np.zeros((len(Z), n_classes))
        full[:, ref.classes_] = p
        p = full
    np.testing.assert_allclose(head(Z), p, atol=1e-12)


def test_fit_probe_reports_the_cv_of_run_probe_and_fits_all_rows():
    from mediafm.evaluation.probes import fit_probe

    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 10))
    y = (X[:, 0] > 0).astype(int)
    groups = np.repeat(np.arange(12), 10)
    tg = Targets("binary", y, ("0", "1"))
    fitted = fit_probe(X, tg, groups, "ap", FAST)
    assert fitted.cv.score == run_probe(X, tg, groups, "ap", FAST).score
    assert fitted.c in FAST.c_grid and fitted.head.dim == 10
    assert np.corrcoef(fitted.head(X), X[:, 0])[0, 1] > 0.9


def test_fit_probe_scores_out_of_fold_at_the_final_regularisation():
    from sklearn.model_selection import GroupKFold

    from mediafm.evaluation.probes import fit_probe

    rng, X, groups = _titles(30, 6, 16, seed=3)
    y = (X[:, 0] + rng.normal(0, 2, len(X)) > 0).astype(int)
    cfg = ProbeConfig(folds=3, inner_folds=2, n_boot=50, c_grid=(0.001, 0.1, 10.0))
    fitted = fit_probe(X, Targets("binary", y, ("0", "1")), groups, config=cfg)
    expected = np.zeros(len(X))
    for train, test in GroupKFold(3, shuffle=True, random_state=cfg.seed).split(X, y, groups):
        expected[test] = PROBES[cfg.head](X[train], y[train], "binary", 2, (fitted.c,), cfg)[0](X[test])
    np.testing.assert_allclose(fitted.oof_at_c, expected)
    assert fitted.oof_at_c.shape == fitted.cv.oof.shape


# ----------------------------------------------------------------------------- blocks
def test_blocks_get_equal_shares_of_the_variance():
    from mediafm.evaluation.probes import _scaler

    rng = np.random.default_rng(0)
    X = rng.normal(0, [1.0] * 90 + [5.0] * 10, size=(200, 100))
    plain = _scaler(X, ())
    np.testing.assert_allclose(plain.scale_, StandardScaler().fit(X).scale_)
    assert _scaler(X, (100,)).scale_ == pytest.approx(plain.scale_)  # one block: plain standardisation
    Xs = _scaler(X, (90, 10)).transform(X)
    # Every block holds half of the total variance, which stays that of plain standardisation.
    assert Xs[:, :90].var(0).sum() == pytest.approx(50.0) and Xs[:, 90:].var(0).sum() == pytest.approx(50.0)
    with pytest.raises(ConfigError, match="do not make up"):
        _scaler(X, (90, 9))


def test_blocks_let_a_narrow_informative_part_count():
    """Two informative features beside 600 of noise: with plain standardisation the noise holds
    nearly all of the ridge kernel; as two blocks, the narrow one counts as much as the wide one."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 8)
    signal = rng.normal(size=(len(groups), 2))
    y = (signal[:, 0] + 0.5 * signal[:, 1] + rng.normal(0, 0.5, len(groups)) > 0).astype(int)
    X = np.concatenate([rng.normal(size=(len(groups), 600)), signal], 1)
    tg = Targets("binary", y, ["0", "1"])
    cfg = ProbeConfig(folds=4, inner_folds=2, n_boot=50, c_grid=(0.001, 0.01, 0.1, 1.0))
    plain = run_probe(X, tg, groups, "ap", cfg).score.value
    blocked = run_probe(X, tg, groups, "ap", dataclasses.replace(cfg, blocks=(600, 2))).score.value
    assert blocked > plain + 0.1 and blocked > 0.85


def test_exact_ties_keep_the_weakest_regularisation():
    from mediafm.evaluation.probes import _fit_select

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(12), 10)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(float)
    # Far past the data's scale every strong alpha ranks the clips alike: AP ties.
    cfg = ProbeConfig(folds=3, inner_folds=3, c_grid=(1e-9, 1e-8, 1e-7))
    head, c = _fit_select(X, y, groups, "binary", 1, "ap", cfg)
    assert c == 1e-7
