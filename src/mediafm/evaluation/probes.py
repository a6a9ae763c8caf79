"""Linear probes on frozen embeddings (scikit-learn), cross-validated by title.

Outer k-fold CV is grouped by title (GroupKFold): no title has clips on both sides, so a probe
cannot score by recognising a title's look instead of learning the task. Inside each training fold,
the regularisation strength is chosen by an inner grouped CV that maximises the task's own metric.
Features are standardised inside each fit (training rows only). Every clip gets an out-of-fold
score; the metric and its title-clustered bootstrap CI are computed once on all of them.

Two probe heads (registry `PROBES`):
- `ridge` (default): ridge regression on the encoded targets (one-hot, indicator, 0/1 or the rank
  value); one head serves all four task kinds. Measured on 1,600 clips x 2,700-d fused vectors on
  2 cores: about 20x faster than `logistic` (LBFGS took 112 s per task), which is what makes the
  6 x 5 grid and the 10-minute demo possible.
- `logistic`: logistic regression (one-vs-rest for multilabel); ranking falls back to ridge.

Every head is linear, so a fitted head is a `LinearHead` of plain arrays: it predicts the same in
memory and after a save/load round trip (`mediafm.apps.head` stores it as .npz, no pickle).
`fit_probe` is what `mediafm fit` runs: the cross-validation of `run_probe` for the reported metric,
then one final fit on every clip with the regularisation picked the same way.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from scipy.special import expit, softmax
from sklearn.preprocessing import StandardScaler

from mediafm.errors import ConfigError
from mediafm.registry import lookup, registrar
from mediafm.evaluation.kinds import PER_CLASS_KINDS, TaskKind
from mediafm.evaluation.labels import Targets
from mediafm.evaluation.metrics import METRICS, Score, bootstrap

# The metric each task kind reports unless told otherwise (Netflix: genre macro AP, tone micro AP,
# retrieval AP, popularity Kendall's tau; ad relevancy uses mean_ap, named explicitly).
DEFAULT_METRIC: dict[TaskKind, str] = {"multiclass": "macro_ap", "multilabel": "micro_ap", "binary": "ap",
                                       "rank": "kendall_tau"}


@dataclass(frozen=True)
class ProbeConfig:
    head: str = "ridge"  # a name in PROBES
    folds: int = 5  # outer CV folds, grouped by title
    inner_folds: int = 3  # inner CV folds (grouped by title) that pick the regularisation
    # Inverse regularisation; ridge uses alpha = 1/C. Down to 1e-5: clip vectors of several
    # thousand dimensions from a few thousand clips often want alpha far above 1,000
    # (docs/tasks.md measures it).
    c_grid: tuple[float, ...] = (1e-5, 1e-4, 0.001, 0.01, 0.1, 1.0)
    # The embedding's parts, sizes in order (ClipEmbedder.blocks: modality blocks, a read-out's
    # parts, cut distances). After per-feature standardisation each part is scaled to an equal
    # share of the total variance, so a 17-d part counts as much as a 1,280-d one; () or one
    # part: every feature counts the same (plain standardisation).
    blocks: tuple[int, ...] = ()
    max_iter: int = 300  # LBFGS iterations for the logistic head
    n_boot: int = 1000  # bootstrap resamples of titles for the CI
    confidence: float = 0.95
    seed: int = 0


@dataclass
class ProbeResult:
    score: Score
    oof: np.ndarray  # out-of-fold scores: [N] (binary, rank) or [N, K]
    chosen_c: list[float] = field(default_factory=list)  # regularisation picked in each outer fold

    def to_dict(self) -> dict:
        return {**self.score.to_dict(), "chosen_c": self.chosen_c}


LINKS = ("identity", "sigmoid", "softmax")


@dataclass(frozen=True)
class LinearHead:
    """A fitted linear probe: scores = link(((Z - mean) / scale) @ coef + intercept).

    `coef` is [D] for one output (binary, rank) or [D, K]; `intercept` is a scalar array or [K].
    An output the training rows never varied on (a class absent from them) has a zero coefficient
    and an infinite intercept, so it scores a constant 0 or 1 through the link.
    """

    mean: np.ndarray  # [D] standardisation fitted on the training rows
    scale: np.ndarray  # [D]
    coef: np.ndarray
    intercept: np.ndarray
    link: str = "identity"  # a name in LINKS

    @property
    def dim(self) -> int:
        return len(self.mean)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        z = ((np.asarray(Z, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        if self.link == "sigmoid":
            return expit(z)
        if self.link == "softmax":
            return softmax(z, axis=-1)
        return z

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": np.asarray(self.intercept)}


# ------------------------------------------------------------------ heads
# A head fits (X, y) once per C in `cs` and returns one LinearHead per C (scores shaped like the
# encoded y), so a head can share work across the regularisation path.
Head = Callable[[np.ndarray, np.ndarray, str, int, tuple, "ProbeConfig"], list[LinearHead]]
PROBES: dict[str, Head] = {}


register_probe = registrar(PROBES)


def _encode(y: np.ndarray, kind: str, n_classes: int) -> np.ndarray:
    if kind == "multiclass":
        return np.eye(n_classes)[y]
    return y.astype(np.float64)


def _scaler(X: np.ndarray, blocks: tuple[int, ...]) -> StandardScaler:
    """Per-feature standardisation of X's training rows; with several `blocks`, each block's
    features are then scaled so that every block holds the same share of the total variance.

    Plain standardisation gives a block a share proportional to its width: beside 1,280 image
    and 1,024 audio dimensions, 17 film descriptors or 4 cut distances hold under 1% of a ridge
    kernel, and a probe cannot use them however well they predict (measured: docs/tasks.md).
    The scale folds into the head's `scale`, so a fitted head applies as before."""
    scaler = StandardScaler().fit(X)
    if len(blocks) > 1:
        if sum(blocks) != X.shape[1]:
            raise ConfigError(None, f"probe blocks {blocks} do not make up the {X.shape[1]}-d embedding")
        edges = np.cumsum((0, *blocks))
        for lo, hi in zip(edges[:-1], edges[1:]):
            scaler.scale_[lo:hi] *= np.sqrt((hi - lo) * len(blocks) / X.shape[1])
    return scaler


@register_probe("ridge")
def _ridge(X: np.ndarray, y: np.ndarray, kind: str, n_classes: int, cs: tuple, cfg: ProbeConfig) -> list[LinearHead]:
    # Ridge in its dual form: one n x n Gram matrix of the standardised training rows (n <= D here:
    # ~1,000 clips of 2,700-d fused vectors), then one Cholesky solve per C. Measured on 2 loaded
    # cores at n=1,280: 4 Cholesky solves 1.8 s, vs 2.4 s per sklearn Ridge fit and 10 s for an
    # eigendecomposition. Same solution as sklearn's Ridge with an intercept (X and Y centred on the
    # training means; checked in tests).
    scaler = _scaler(X, cfg.blocks)
    Xs = scaler.transform(X)
    Y = _encode(y, kind, n_classes)
    y_mean = Y.mean(axis=0)
    gram = Xs @ Xs.T
    eye = np.eye(len(gram))

    def make(alpha: float) -> LinearHead:
        coef = Xs.T @ cho_solve(cho_factor(gram + alpha * eye), Y - y_mean)  # primal weights [D, ...]
        return LinearHead(scaler.mean_, scaler.scale_, coef, np.asarray(y_mean))
    return [make(1.0 / c) for c in cs]


@register_probe("logistic")
def _logistic(X: np.ndarray, y: np.ndarray, kind: str, n_classes: int, cs: tuple, cfg: ProbeConfig) -> list[LinearHead]:
    if kind == "rank":
        return _ridge(X, y, kind, n_classes, cs, cfg)
    scaler = _scaler(X, cfg.blocks)
    Xs = scaler.transform(X)

    def binary(c: float, t: np.ndarray) -> tuple[np.ndarray, float]:
        """(w [D], b) with P(t = 1) = sigmoid(x @ w + b); a constant column gives b = +-inf."""
        if t.min() == t.max():
            return np.zeros(X.shape[1]), (np.inf if t[0] == 1 else -np.inf)
        lr = LogisticRegression(C=c, max_iter=cfg.max_iter).fit(Xs, t)
        return lr.coef_[0], float(lr.intercept_[0])

    def make(c: float) -> LinearHead:
        if kind == "binary":
            w, b = binary(c, y)
            return LinearHead(scaler.mean_, scaler.scale_, w, np.asarray(b), "sigmoid")
        if kind == "multilabel":  # one-vs-rest: one independent binary head per class
            wb = [binary(c, y[:, k]) for k in range(y.shape[1])]
            return LinearHead(scaler.mean_, scaler.scale_, np.stack([w for w, _ in wb], 1),
                              np.array([b for _, b in wb]), "sigmoid")
        # multiclass: softmax over the classes seen in training; absent classes get logit -inf (score 0)
        coef, intercept = np.zeros((X.shape[1], n_classes)), np.full(n_classes, -np.inf)
        present = np.unique(y)
        if len(present) == 1:
            intercept[present[0]] = 0.0
        else:
            lr = LogisticRegression(C=c, max_iter=cfg.max_iter).fit(Xs, y)
            if len(present) == 2:  # sklearn keeps one logit d for two classes: softmax([0, d])
                coef[:, present[1]], intercept[present] = lr.coef_[0], (0.0, lr.intercept_[0])
            else:
                coef[:, present], intercept[present] = lr.coef_.T, lr.intercept_
        return LinearHead(scaler.mean_, scaler.scale_, coef, intercept, "softmax")
    return [make(c) for c in cs]


# ------------------------------------------------------------------ CV
def _fit_select(X, y, groups, kind, n_classes, metric, cfg: ProbeConfig) -> tuple[LinearHead, float]:
    """Pick C by inner grouped CV on the task metric, then refit on all of (X, y)."""
    head = PROBES[cfg.head]
    n_groups = len(np.unique(groups))
    best_c = cfg.c_grid[0]
    if len(cfg.c_grid) > 1 and n_groups >= 2:
        inner = GroupKFold(n_splits=min(cfg.inner_folds, n_groups))
        vals = np.zeros((len(cfg.c_grid), 0)).tolist()
        for tr, va in inner.split(X, y, groups):
            for k, predict in enumerate(head(X[tr], y[tr], kind, n_classes, cfg.c_grid, cfg)):
                v = METRICS[metric](y[va], predict(X[va]), groups[va])
                if np.isfinite(v):
                    vals[k].append(v)
        means = np.array([np.mean(v) if v else -np.inf for v in vals])
        # Exact ties keep the weakest regularisation among them: far past the data's scale a
        # ridge head ranks clips the same for any strong alpha (so rank metrics tie) while its
        # scores shrink towards a constant, where thresholds on them turn fragile.
        if np.isfinite(means.max()):
            tied = np.flatnonzero(means >= means.max() - 1e-12 * max(1.0, abs(means.max())))
            best_c = max(cfg.c_grid[int(k)] for k in tied)
    return head(X, y, kind, n_classes, (best_c,), cfg)[0], best_c


def _check(X, targets: Targets, groups, metric: str | None, config: ProbeConfig):
    lookup(PROBES, config.head, "probe head")
    metric = metric or DEFAULT_METRIC[targets.kind]
    lookup(METRICS, metric, "metric")
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 3:
        raise ConfigError(None, f"probes need clips from at least 3 titles for grouped CV, got {n_groups}")
    if len(X) != len(targets.y):
        raise ConfigError(None, f"{len(X)} embeddings for {len(targets.y)} labels")
    return np.asarray(X, dtype=np.float64), groups, metric


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Small folds can miss a rare class or stop LBFGS early at weak regularisation; both are
    expected here and scored as they fall, so the warnings are noise."""
    with warnings.catch_warnings():
        for w in (ConvergenceWarning, UserWarning, RuntimeWarning):
            warnings.simplefilter("ignore", w)
        yield


def run_probe(X: np.ndarray, targets: Targets, groups: np.ndarray, metric: str | None = None,
              config: ProbeConfig | None = None) -> ProbeResult:
    """Cross-validated linear probe; returns the metric with a CI on out-of-fold scores.

    Args:
        X: [N, D] clip embeddings.
        targets: labels as arrays (mediafm.evaluation.labels.targets).
        groups: [N] title id per clip; folds never split a title.
        metric: a name in mediafm.evaluation.metrics.METRICS; defaults by task kind.
        config: folds, regularisation grid, head, bootstrap settings.
    """
    config = config if config is not None else ProbeConfig()
    X, groups, metric = _check(X, targets, groups, metric, config)
    y, kind = targets.y, targets.kind
    oof = np.zeros((len(X), len(targets.classes))) if kind in PER_CLASS_KINDS else np.zeros(len(X))
    chosen: list[float] = []
    with _quiet():
        for train, test in _outer_folds(X, y, groups, config):
            predict, c = _fit_select(X[train], y[train], groups[train], kind, len(targets.classes), metric, config)
            chosen.append(float(c))
            oof[test] = predict(X[test])
    score = bootstrap(metric, y, oof, groups, n_boot=config.n_boot, confidence=config.confidence, seed=config.seed)
    return ProbeResult(score, oof, chosen)


@dataclass
class FittedProbe:
    head: LinearHead  # fitted on every clip
    c: float  # its regularisation, picked by grouped CV on every clip
    cv: ProbeResult  # the cross-validated metric and out-of-fold scores (what `mediafm probe` prints)
    # Scores of each CV fold's clips from a head with the final head's C fitted on the other folds
    # (empty for rank tasks, which have no thresholds): a score threshold picked on them fits the
    # final head's scale (a ridge head's scores shrink with its regularisation, and the CV's folds
    # may each have picked another C). C itself was picked on every clip, so thresholds and F1
    # from them are slightly optimistic.
    oof_at_c: np.ndarray


def fit_probe(X: np.ndarray, targets: Targets, groups: np.ndarray, metric: str | None = None,
              config: ProbeConfig | None = None) -> FittedProbe:
    """`run_probe`'s cross-validation, then the head refitted on all clips.

    The final regularisation is chosen by the same inner grouped CV, run on all clips; the CV
    metric therefore describes this procedure on unseen titles, not the final weights themselves.
    """
    config = config if config is not None else ProbeConfig()
    X, groups, metric = _check(X, targets, groups, metric, config)
    cv = run_probe(X, targets, groups, metric, config)  # its own check is then a no-op (no second copy of X)
    y, kind, n_classes = targets.y, targets.kind, len(targets.classes)
    with _quiet():
        head, c = _fit_select(X, y, groups, kind, n_classes, metric, config)
        oof = np.zeros_like(cv.oof) if kind != "rank" else np.zeros(0)
        for train, test in _outer_folds(X, y, groups, config) if kind != "rank" else ():
            oof[test] = PROBES[config.head](X[train], y[train], kind, n_classes, (c,), config)[0](X[test])
    return FittedProbe(head, float(c), cv, oof)


def _outer_folds(X, y, groups, config: ProbeConfig):
    """The grouped CV folds every probe of (X, groups) is scored on (train, test index pairs)."""
    n = min(config.folds, len(np.unique(groups)))
    return GroupKFold(n_splits=n, shuffle=True, random_state=config.seed).split(X, y, groups)
