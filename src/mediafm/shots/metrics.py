"""Boundary precision/recall/F1 against the montage ground truth (tests/media/truth.json).

Matching rule: a cut at frame c matches a detected boundary b with |b - c| <= tolerance;
a dissolve or fade matches a boundary inside [start_frame - tolerance, end_frame + tolerance].
Matching is one-to-one (each detection counts for at most one transition), maximised greedily
in time order, which is optimal here because transitions are far apart relative to the windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Transition:
    """A true transition: frames [start, end] (start == end == first frame of the new shot for a cut)."""

    kind: str  # "cut", "dissolve" or "fade"
    start: int
    end: int


@dataclass
class BoundaryScore:
    """Result of `score_boundaries`; `misses` are true transitions, `false_alarms` detected frames."""

    precision: float
    recall: float
    f1: float
    matched: int
    n_true: int
    n_detected: int
    misses: list[Transition] = field(default_factory=list)
    false_alarms: list[int] = field(default_factory=list)


def transitions_from_truth(truth: dict) -> list[Transition]:
    """The `transitions[]` of a truth.json document as `Transition`s."""
    return [Transition(t["type"], int(t["start_frame"]), int(t["end_frame"])) for t in truth["transitions"]]


def _window(t: Transition, tolerance: int) -> tuple[int, int]:
    return t.start - tolerance, t.end + tolerance


def score_boundaries(detected: Iterable[int], truth: Sequence[Transition], tolerance: int = 2) -> BoundaryScore:
    """Score detected boundary frames against true transitions.

    Args:
        detected: first frames of detected new shots.
        truth: the true transitions.
        tolerance: frames of slack on each side (2 in the shot benchmarks).

    Returns:
        precision, recall, F1, and the unmatched transitions and detections.
    """
    dets = sorted(set(detected))
    used = [False] * len(dets)
    misses = []
    for t in sorted(truth, key=lambda t: t.start):
        lo, hi = _window(t, tolerance)
        # Of the free detections in the window, take the one nearest the transition's centre.
        centre = (t.start + t.end) / 2
        best = min((i for i, d in enumerate(dets) if lo <= d <= hi and not used[i]),
                   key=lambda i: abs(dets[i] - centre), default=None)
        if best is None:
            misses.append(t)
        else:
            used[best] = True
    matched = len(truth) - len(misses)
    precision = matched / len(dets) if dets else (1.0 if not truth else 0.0)
    recall = matched / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BoundaryScore(precision, recall, f1, matched, len(truth), len(dets), misses,
                         [d for d, u in zip(dets, used) if not u])
