"""Metrics against scikit-learn / scipy on hand cases, and the title-clustered bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau
from sklearn.metrics import average_precision_score

from mediafm.evaluation.metrics import average_precision, bootstrap, kendall_tau, macro_ap, mean_ap, micro_ap, r2
from mediafm_testing.metrics import chance_level


def test_ap_hand_case():
    # ranking: 1, 0, 1, 0 -> precision at hits 1/1 and 2/3: AP = (1 + 2/3) / 2
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s))


@pytest.mark.parametrize("seed", range(5))
def test_ap_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    y[0] = 1
    s = rng.integers(0, 5, 60).astype(float)  # many ties: sklearn groups them into one threshold
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s))


def test_micro_macro_match_sklearn():
    rng = np.random.default_rng(1)
    Y = rng.integers(0, 2, (50, 4))
    S = rng.random((50, 4))
    assert micro_ap(Y, S) == pytest.approx(average_precision_score(Y, S, average="micro"))
    assert macro_ap(Y, S) == pytest.approx(average_precision_score(Y, S, average="macro"))
    # multiclass labels as indices are one-hot encoded first
    y = rng.integers(0, 3, 40)
    S3 = rng.random((40, 3))
    assert macro_ap(y, S3) == pytest.approx(average_precision_score(np.eye(3)[y], S3, average="macro"))


def test_mean_ap_is_mean_of_per_title_ap():
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0, 0])
    s = np.array([0.1, 0.9, 0.5, 0.2, 0.8, 0.3, 0.1, 0.4, 0.2])
    g = np.array(["a"] * 3 + ["b"] * 3 + ["c"] * 3)  # title c has no positive: skipped
    expected = np.mean([average_precision_score(y[:3], s[:3]), average_precision_score(y[3:6], s[3:6])])
    assert mean_ap(y, s, g) == pytest.approx(expected)


def test_r2_matches_sklearn_and_is_zero_for_the_mean():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(4)
    y = rng.normal(size=40)
    s = y + rng.normal(scale=0.5, size=40)
    assert r2(y, s) == pytest.approx(r2_score(y, s))
    assert r2(y, np.full(40, y.mean())) == pytest.approx(0.0)
    assert np.isnan(r2(np.ones(5), np.arange(5.0)))


def test_kendall_tau_matches_scipy():
    y = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 4.0])
    s = np.array([2.5, 0.5, 3.0, 6.0, 1.0, 4.0])
    assert kendall_tau(y, s) == pytest.approx(kendalltau(y, s).statistic)
    assert kendall_tau(y, y) == pytest.approx(1.0)


def test_bootstrap_interval_brackets_value_and_narrows_with_more_titles():
    rng = np.random.default_rng(0)

    def data(n_titles):
        g = np.repeat(np.arange(n_titles), 5)
        y = rng.integers(0, 2, len(g))
        s = y + rng.normal(0, 1.0, len(g))
        return y, s, g

    small = bootstrap("ap", *data(10), n_boot=300)
    large = bootstrap("ap", *data(200), n_boot=300)
    for sc in (small, large):
        assert sc.low <= sc.value <= sc.high
    assert (large.high - large.low) < (small.high - small.low)
    assert large.n_groups == 200 and large.n == 1000


def test_chance_levels():
    y = np.array([1, 0, 0, 0])
    assert chance_level("ap", y) == 0.25
    assert chance_level("kendall_tau", y) == 0.0
    assert chance_level("macro_ap", np.array([0, 1, 2, 0])) == pytest.approx(1 / 3)
