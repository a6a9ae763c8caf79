"""The score random predictions would get on a metric of `mediafm.evaluation.metrics`: the floor a
probe's score is checked against."""

from __future__ import annotations

import numpy as np


def chance_level(metric: str, y: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The expected score of random scores: positive rate for AP metrics, 0 for tau."""
    y = np.asarray(y)
    if metric == "kendall_tau":
        return 0.0
    if metric == "mean_ap":
        rates = [y[groups == g].mean() for g in np.unique(groups) if y[groups == g].sum() > 0]
        return float(np.mean(rates))
    if y.ndim == 1 and metric in ("macro_ap", "micro_ap"):
        return 1.0 / len(np.unique(y))  # one-hot over K present classes: every column has mean ~1/K
    if metric == "macro_ap":
        # macro_ap skips classes with no positives (AP is undefined there), so their rate of 0 is left out too.
        present = y[:, y.sum(axis=0) > 0]
        return float(present.mean(axis=0).mean())
    return float(y.mean())
