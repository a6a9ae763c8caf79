"""Scene segmentation from shot embeddings (pure): a score per cut, then the cuts that open scenes.

- `neighbour_change`: 1 - cosine between consecutive shots. The simple baseline: within a dialogue
  scene it fires at every shot / reverse-shot cut, as strongly as at a change of place.
- `boundary_scores` (the unsupervised default): TextTiling (Hearst, 1997) on shot embeddings.
  Vectors are centred on the title's mean first, so the look every shot of the title shares (its
  grade, its sound) does not dominate the cosine; each cut compares the mean of the `window` shots
  before it with the mean of the `window` shots after (alternating shots average out); the
  change's depth (how far it rises above the valleys on either side) is the score.
- `pick_boundaries`: TextTiling's cutoff (mean - std / 2 of the positive depths) on local peaks.
- `gap_features`: what a supervised boundary head sees per cut ([|L - R|, L * R] of the window
  means), fitted by `mediafm fit --task scenes` like any probe.
"""

from __future__ import annotations

import numpy as np

DEFAULT_WINDOW = 2  # shots on each side of a cut


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def neighbour_change(vectors: np.ndarray) -> np.ndarray:
    """[n - 1] 1 - cos(shot i, shot i + 1) of the raw vectors."""
    v = _unit(np.asarray(vectors, np.float64))
    return 1.0 - np.einsum("ij,ij->i", v[:-1], v[1:])


def window_means(vectors: np.ndarray, window: int = DEFAULT_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Per cut, the mean of the title-centred unit vectors of up to `window` shots before it and
    after it: ([n - 1, D], [n - 1, D]), each row unit-normalised."""
    v = np.asarray(vectors, np.float64)
    v = _unit(v - v.mean(axis=0)) if len(v) > 1 else _unit(v)
    csum = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    n = len(v)
    cut = np.arange(1, n)  # cut before shot `cut`
    lo, hi = np.maximum(cut - window, 0), np.minimum(cut + window, n)
    left = (csum[cut] - csum[lo]) / (cut - lo)[:, None]
    right = (csum[hi] - csum[cut]) / (hi - cut)[:, None]
    return _unit(left), _unit(right)


def depth(change: np.ndarray) -> np.ndarray:
    """TextTiling depth of each value: its rise above the lowest point reached by walking downhill
    to the left plus the same to the right (0 where a neighbour is higher on both sides' walks)."""
    c = np.asarray(change, float)
    n = len(c)
    lo, hi = np.arange(n), np.arange(n)  # where each downhill walk ends (one pass each way: O(n))
    for g in range(1, n):
        if c[g - 1] <= c[g]:
            lo[g] = lo[g - 1]
    for g in range(n - 2, -1, -1):
        if c[g + 1] <= c[g]:
            hi[g] = hi[g + 1]
    return (c - c[lo]) + (c - c[hi])


def boundary_scores(vectors: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """[n - 1] unsupervised scene-boundary score per cut (higher: more likely a new scene)."""
    if len(vectors) < 2:
        return np.zeros(0)
    left, right = window_means(vectors, window)
    return depth(1.0 - np.einsum("ij,ij->i", left, right))


def local_peaks(scores: np.ndarray) -> np.ndarray:
    """[n] True where a score is at least its left neighbour and above its right neighbour."""
    s = np.asarray(scores, float)
    left = np.r_[-np.inf, s[:-1]]
    right = np.r_[s[1:], -np.inf]
    return (s >= left) & (s > right)


def pick_boundaries(scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Indices of the cuts that open a scene: local peaks scoring above `threshold` (default:
    TextTiling's cutoff, the mean minus half the standard deviation of the positive scores)."""
    s = np.asarray(scores, float)
    if threshold is None:
        pos = s[s > 0]
        if len(pos) == 0:
            return np.zeros(0, np.int64)
        threshold = max(pos.mean() - pos.std() / 2, 0.0)  # a cut of depth 0 is no boundary
    return np.flatnonzero(local_peaks(s) & (s > threshold))


def gap_features(vectors: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """[n - 1, 2D] per cut: |L - R| and L * R of the window means. Both terms ignore which side is
    which; a linear head on them weighs each dimension's change and agreement."""
    if len(vectors) < 2:
        return np.zeros((0, 2 * np.asarray(vectors).shape[-1]), np.float32)
    left, right = window_means(vectors, window)
    return np.concatenate([np.abs(left - right), left * right], axis=1).astype(np.float32)


def boundary_targets(cuts_s: np.ndarray, boundaries_s: np.ndarray, tolerance_s: float) -> np.ndarray:
    """[n - 1] 0/1: 1 for the cut nearest each true boundary, if within `tolerance_s` of it."""
    cuts_s = np.asarray(cuts_s, float)
    y = np.zeros(len(cuts_s), np.int64)
    if len(cuts_s) == 0:
        return y
    for b in np.asarray(boundaries_s, float):
        j = int(np.argmin(np.abs(cuts_s - b)))
        if abs(cuts_s[j] - b) <= tolerance_s:
            y[j] = 1
    return y


def scene_of_shot(n_shots: int, boundary_cuts: np.ndarray) -> np.ndarray:
    """[n] scene index per shot, given the cuts that open scenes (cut g lies before shot g + 1)."""
    ids = np.zeros(n_shots, np.int64)
    for g in np.sort(np.asarray(boundary_cuts, np.int64)):
        ids[g + 1:] += 1
    return ids
