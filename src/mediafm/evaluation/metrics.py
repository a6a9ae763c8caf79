"""Metrics as Netflix reported them for MediaFM, plus title-clustered bootstrap intervals.

Pure functions: arrays in, float out, tested against scikit-learn/scipy on hand cases. AP is
computed by `_ap` below rather than `sklearn.metrics.average_precision_score` because the bootstrap
calls it thousands of times and sklearn's input validation costs ~2 ms a call (measured: 1,000
resamples of a 5-class macro AP took 18 s); `_ap` gives the same value (same tie handling) in ~50 us.
`mean_ap` is the only composite: the mean over titles of each title's AP (a title is a query
ranking its own candidate clips, as an ad-break planner would).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from mediafm.registry import registrar

# A metric takes (y_true, scores, groups); groups (title ids) matter only to mean_ap.
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
METRICS: dict[str, Metric] = {}


register_metric = registrar(METRICS)


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    """Binary AP as sklearn defines it: sum over distinct thresholds of (R_k - R_k-1) * P_k."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    tp = np.cumsum(y)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # tied scores form one threshold
    tp, n = tp[last_of_tie], np.flatnonzero(last_of_tie) + 1
    if tp[-1] == 0:
        return float("nan")
    precision, recall = tp / n, tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _present_columns(y: np.ndarray) -> np.ndarray:
    # AP is undefined for a class with no positives in the sample; sklearn warns and returns 0.
    # We drop such columns (a bootstrap resample can lose a rare class) rather than score them 0.
    return np.flatnonzero(y.sum(axis=0) > 0)


@register_metric("ap")
def average_precision(y: np.ndarray, s: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Binary AP (retrieval): y [N] 0/1, s [N] scores."""
    return _ap(np.asarray(y).ravel(), np.asarray(s, dtype=float).ravel())


@register_metric("micro_ap")
def micro_ap(y: np.ndarray, s: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Micro-averaged AP (tone): every (clip, class) pair pooled into one ranking."""
    y, s = _indicator(y, s)
    return _ap(y.ravel(), s.ravel())


@register_metric("macro_ap")
def macro_ap(y: np.ndarray, s: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Macro-averaged AP (genre): the mean over classes of each class's AP."""
    y, s = _indicator(y, s)
    cols = _present_columns(y)
    if len(cols) == 0:
        return float("nan")
    return float(np.mean([_ap(y[:, c], s[:, c]) for c in cols]))


@register_metric("mean_ap")
def mean_ap(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> float:
    """mAP (ad relevancy): mean over titles of the AP of ranking that title's clips.

    Titles with no positive clip are skipped (AP is undefined there).
    """
    y, s, groups = np.asarray(y), np.asarray(s), np.asarray(groups)
    s = np.asarray(s, dtype=float)
    aps = [_ap(y[groups == g], s[groups == g]) for g in np.unique(groups) if y[groups == g].sum() > 0]
    return float(np.mean(aps)) if aps else float("nan")


@register_metric("kendall_tau")
def kendall_tau(y: np.ndarray, s: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Kendall's tau-b between true scores and predictions (popularity ranking)."""
    tau = kendalltau(np.asarray(y, dtype=float), np.asarray(s, dtype=float)).statistic
    return float(tau)


@register_metric("r2")
def r2(y: np.ndarray, s: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Coefficient of determination of predictions `s` for a continuous target (1 - SSE / SST);
    0 for predicting the mean, negative when worse. NaN for a constant target."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    sst = float(((y - y.mean()) ** 2).sum())
    return float(1.0 - ((y - s) ** 2).sum() / sst) if sst > 0 else float("nan")


def _indicator(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass [N] class indices -> [N, K] one-hot to match scores [N, K]."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    if y.ndim == 1:
        onehot = np.zeros_like(s, dtype=np.int64)
        onehot[np.arange(len(y)), y] = 1
        y = onehot
    return y, s


# ------------------------------------------------------------------ bootstrap
@dataclass(frozen=True)
class Score:
    """A metric value with a bootstrap confidence interval (title-clustered resampling)."""

    metric: str
    value: float
    low: float
    high: float
    n: int  # number of clips scored
    n_groups: int  # number of titles

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "ci_low": self.low, "ci_high": self.high,
                "n_clips": self.n, "n_titles": self.n_groups}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(metric: str, y: np.ndarray, s: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
              confidence: float = 0.95, seed: int = 0) -> Score:
    """Metric with a percentile CI from resampling whole titles with replacement.

    Titles, not clips, are resampled: clips of one title share story and style, so resampling clips
    would treat correlated samples as independent and give intervals that are too narrow.
    """
    fn = METRICS[metric]
    y, s, groups = np.asarray(y), np.asarray(s), np.asarray(groups)
    value = fn(y, s, groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        picks = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[p] for p in picks])
        # Resampled titles get fresh ids so mean_ap treats a title drawn twice as two queries.
        g = np.concatenate([np.full(len(members[p]), j) for j, p in enumerate(picks)])
        v = fn(y[idx], s[idx], g)
        if np.isfinite(v):
            stats.append(v)
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(stats, [alpha, 1 - alpha]) if stats else (float("nan"), float("nan")))
    return Score(metric, float(value), float(low), float(high), len(y), len(uniq))
