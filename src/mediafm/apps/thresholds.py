"""Decision thresholds chosen on cross-validated scores (pure).

A probe's scores rank clips; a tagger needs a yes/no per class. The threshold of each class is the
one that maximised F1 on the out-of-fold scores of `mediafm fit`'s grouped CV, i.e. on titles the
head had not seen, so it is not tuned on the clips it was fitted to.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve


def best_f1_thresholds(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output column, the score threshold with the best F1 (score >= threshold means yes).

    Args:
        y: [N] class indices (multiclass, scores [N, K]), [N] 0/1 (scores [N]) or [N, K] 0/1.
        scores: out-of-fold scores shaped like the head's output.

    Returns:
        (thresholds [K], f1 [K]); K = 1 for one-column scores. A column without positives gets
        threshold +inf and F1 0 (it is never tagged).
    """
    s = np.asarray(scores, float)
    y = np.asarray(y)
    if s.ndim == 1:
        s, y = s[:, None], y.reshape(-1, 1)
    elif y.ndim == 1:  # multiclass indices -> one-hot
        y = np.eye(s.shape[1], dtype=np.int64)[y]
    thresholds, f1s = np.full(s.shape[1], np.inf), np.zeros(s.shape[1])
    for k in range(s.shape[1]):
        if y[:, k].sum() == 0:
            continue
        precision, recall, cuts = precision_recall_curve(y[:, k], s[:, k])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = int(np.argmax(f1))
        thresholds[k], f1s[k] = cuts[best], f1[best]
    return thresholds, f1s
