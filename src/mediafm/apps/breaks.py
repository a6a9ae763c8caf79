"""Ad-break points: the cuts between shots, scored, spaced out, never inside a line of dialogue.

Pure functions over shot times, cue times and scores. A break candidate is the cut before shot
i + 1 (at `starts[i + 1]`); it is scored by a head applied to the clip that ends at the cut, the
way ad-relevancy labels describe a clip after which a break works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BreakConfig:
    min_spacing_s: float = 120.0  # no two breaks closer than this
    min_score: float | None = None  # None: the head's CV threshold (binary heads), else no floor
    max_breaks: int | None = None  # per title; None: as many as spacing and score allow
    clip_s: float | None = None  # length of the clip scored before each cut; None: the head's median


def cut_times(starts: np.ndarray) -> np.ndarray:
    """[n - 1] times of the cuts between consecutive shots."""
    return np.asarray(starts, float)[1:]


def inside_cues(times: np.ndarray, cues: np.ndarray) -> np.ndarray:
    """[T] True where a time falls strictly inside a cue's [start, end] (cues: [C, 2] seconds).

    A cue that ends exactly at the cut, or starts at it, is not split by it.
    """
    times = np.asarray(times, float)
    cues = np.asarray(cues, float).reshape(-1, 2)
    if len(cues) == 0:
        return np.zeros(len(times), bool)
    return ((cues[None, :, 0] < times[:, None]) & (times[:, None] < cues[None, :, 1])).any(axis=1)


def clip_before(starts: np.ndarray, ends: np.ndarray, last: int, length_s: float) -> int:
    """First shot of the run ending with shot `last` whose length is closest to `length_s`
    (at least the shot itself)."""
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    lengths = ends[last] - starts[: last + 1]  # run first..last for every first <= last
    return int(np.argmin(np.abs(lengths - length_s)))


def pick_breaks(times: np.ndarray, scores: np.ndarray, allowed: np.ndarray, min_spacing_s: float,
                min_score: float | None = None, max_breaks: int | None = None) -> np.ndarray:
    """Indices of chosen cuts, in time order: best score first, skipping cuts that are not
    allowed, score below `min_score`, or lie closer than `min_spacing_s` to a chosen one."""
    times, scores = np.asarray(times, float), np.asarray(scores, float)
    ok = np.asarray(allowed, bool) & np.isfinite(scores)
    if min_score is not None:
        ok &= scores >= min_score
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if max_breaks is not None and len(chosen) >= max_breaks:
            break
        if ok[i] and all(abs(times[i] - times[j]) >= min_spacing_s for j in chosen):
            chosen.append(int(i))
    return np.sort(np.asarray(chosen, dtype=np.int64))
