"""Candidate clips: runs of consecutive shots whose length falls in a range of seconds.

A candidate starts on a shot's start and ends on a shot's end, so it never cuts a shot (or a line
spoken across it) in two. Pure functions over shot times; spans are [first_shot, last_shot] index
pairs (inclusive) and their seconds are [starts[first], ends[last]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mediafm.errors import ConfigError


@dataclass(frozen=True)
class ProposalConfig:
    """How candidate clips are proposed. Lengths of None come from the head's training clips."""

    min_s: float | None = None  # shortest candidate in seconds
    max_s: float | None = None  # longest candidate in seconds
    max_overlap: float = 0.5  # a candidate overlapping a kept one by more IoU than this is a duplicate
    within_scenes: bool = False  # never cross a scene boundary (mediafm.apps.segmentation)

    def lengths(self, default: tuple[float, float]) -> tuple[float, float]:
        lo = default[0] if self.min_s is None else self.min_s
        hi = default[1] if self.max_s is None else self.max_s
        if not (0 <= lo <= hi):
            raise ConfigError(None, f"clip length range must satisfy 0 <= min <= max, got {lo}..{hi} s")
        if not 0 <= self.max_overlap <= 1:
            raise ConfigError(None, f"max overlap is an IoU in [0, 1], got {self.max_overlap}")
        return float(lo), float(hi)


def shot_runs(starts: np.ndarray, ends: np.ndarray, min_s: float, max_s: float,
              scene_of_shot: np.ndarray | None = None) -> np.ndarray:
    """Every run of consecutive shots lasting min_s..max_s seconds: [M, 2] (first, last) shots.

    With `scene_of_shot` ([n] scene id per shot) a run never spans two scenes. Runs come ordered by
    first shot, then by length.
    """
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    out = []
    for i in range(len(starts)):
        for j in range(i, len(starts)):
            length = ends[j] - starts[i]
            if length > max_s or (scene_of_shot is not None and scene_of_shot[j] != scene_of_shot[i]):
                break
            if length >= min_s:
                out.append((i, j))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def span_seconds(runs: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """[M, 2] (start_s, end_s) of shot runs."""
    runs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
    return np.stack([np.asarray(starts, float)[runs[:, 0]], np.asarray(ends, float)[runs[:, 1]]], axis=1)


def iou(span: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Temporal intersection over union of one (start, end) span with each of [M, 2] spans."""
    inter = np.clip(np.minimum(span[1], spans[:, 1]) - np.maximum(span[0], spans[:, 0]), 0, None)
    union = (span[1] - span[0]) + (spans[:, 1] - spans[:, 0]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_select(spans: np.ndarray, order: np.ndarray, max_iou: float, limit: int | None = None) -> np.ndarray:
    """Indices of spans kept by walking `order` and keeping a span unless its IoU with a kept span
    exceeds `max_iou` (0: no overlap at all; touching spans do not overlap). Stops at `limit`."""
    spans = np.asarray(spans, float).reshape(-1, 2)
    kept: list[int] = []
    for i in order:
        if limit is not None and len(kept) >= limit:
            break
        if not kept or iou(spans[i], spans[kept]).max() <= max_iou:
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def propose(starts: np.ndarray, ends: np.ndarray, min_s: float, max_s: float, max_overlap: float = 0.5,
            scene_of_shot: np.ndarray | None = None) -> np.ndarray:
    """Candidate clips of one title: shot runs of min_s..max_s seconds, deduplicated in time order
    (a run is dropped when it overlaps an earlier kept run by more than `max_overlap` IoU; with
    max_overlap=1 every run is kept). Returns [M, 2] (first, last) shots."""
    runs = shot_runs(starts, ends, min_s, max_s, scene_of_shot)
    if max_overlap >= 1 or len(runs) == 0:
        return runs
    keep = greedy_select(span_seconds(runs, starts, ends), np.arange(len(runs)), max_overlap)
    return runs[keep]


def top_k(spans: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best-scoring spans that do not overlap each other, best first."""
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    return greedy_select(spans, order, 0.0, limit=k)
