"""A trained head's predictions on one title, as the explorer shows them.

Each `mediafm.apps.apply` function answers for one class and one break spacing, and embeds the
title's clips again on every call. The explorer asks for one title at a time, for whatever class
and spacing the user picks, so `head_scores` runs the library once per (title, head) and keeps
every class's scores of the title's shots, candidate clips and break cuts; `shots`, `top_clips`
and `breaks` then derive the answer for a class and spacing from those arrays with the pure
functions `apply` uses (`proposals.top_k`, `breaks.pick_breaks`), without reading the store.
Scene cuts do not depend on a clip head: `scene_cuts` is computed once per title and shared by
every head and by requests without one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.apps import apply
from mediafm.apps import breaks as brk
from mediafm.apps import proposals as prop
from mediafm.apps.head import TrainedHead
from mediafm.store.catalog import Store
from mediafm.evaluation.kinds import PER_CLASS_KINDS


class _ReadOnce(Store):
    """The store with each per-title read done at most once: the library reads a title's shots,
    row and schema once per application (four of them per title here). Lives for one title."""

    def __init__(self, root: str | Path):
        super().__init__(root)
        self._memo: dict[tuple, object] = {}

    def _once(self, key: tuple, read):
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def shots(self, title_id: str | None = None) -> pd.DataFrame:
        if title_id is None:
            return super().shots()
        return self._once(("shots", title_id), lambda: super(_ReadOnce, self).shots(title_id))

    def title(self, title_id: str) -> dict:
        return self._once(("title", title_id), lambda: super(_ReadOnce, self).title(title_id))

    def cues(self, title_id: str):
        return self._once(("cues", title_id), lambda: super(_ReadOnce, self).cues(title_id))

    def features(self, title_id: str, column: str = "fused") -> np.ndarray:
        return self._once(("features", title_id, column), lambda: super(_ReadOnce, self).features(title_id, column))

    def feature_encoders(self, title_id: str) -> dict:
        return self._once(("encoders", title_id), lambda: super(_ReadOnce, self).feature_encoders(title_id))

    def has_title(self, title_id: str) -> bool:  # asked once per embedded clip
        return self._once(("has_title", title_id), lambda: super(_ReadOnce, self).has_title(title_id))

    def has_features(self, title_id: str) -> bool:
        return self._once(("has_features", title_id), lambda: super(_ReadOnce, self).has_features(title_id))


class _TitleScorer(apply.Scorer):
    """A Scorer over `_ReadOnce` that embeds a set of spans once however many times it is scored
    (break cuts are scored for one class by `apply.break_candidates`, then for all of them here)."""

    def __init__(self, store_root: str | Path, head: TrainedHead):
        super().__init__(store_root, head)
        self.store = self.embedder.store = _ReadOnce(store_root)
        self._embedded: dict[tuple, np.ndarray] = {}

    def embed(self, spans: pd.DataFrame) -> np.ndarray:
        key = (tuple(spans["title"]), np.asarray(spans["start"], float).tobytes(), np.asarray(spans["end"], float).tobytes())
        if key not in self._embedded:
            self._embedded[key] = super().embed(spans)
        return self._embedded[key]


def _nbytes(obj) -> int:
    """Bytes held by a dataclass of arrays (the explorer's cache budgets by `sys.getsizeof`)."""
    total = object.__sizeof__(obj)
    for f in fields(obj):
        v = getattr(obj, f.name)
        total += v.nbytes if isinstance(v, np.ndarray) else sys.getsizeof(v)
    return total


@dataclass(frozen=True, eq=False)
class HeadScores:
    """Every class's scores of one clip head on one title (columns: the head's classes, or one)."""

    shot_index: np.ndarray  # [n]
    shot_start: np.ndarray
    shot_end: np.ndarray
    shot_scores: np.ndarray  # [n, K]
    clip_start: np.ndarray  # [M] candidate clips (every shot run of the head's clip lengths)
    clip_end: np.ndarray
    clip_scores: np.ndarray  # [M, K]
    cut_shot: np.ndarray  # [B] break candidates: the cut lies before this shot
    cut_time: np.ndarray
    cut_allowed: np.ndarray  # not inside a subtitle cue (apply.break_candidates)
    cut_scores: np.ndarray  # [B, K]
    thresholds: tuple[float, ...]  # the head's CV thresholds per column (empty for rank heads)

    def __sizeof__(self) -> int:
        return _nbytes(self)


@dataclass(frozen=True, eq=False)
class SceneCuts:
    shot: np.ndarray  # [n - 1] the cut lies before this shot
    time_s: np.ndarray
    score: np.ndarray
    boundary: np.ndarray  # the cut opens a scene
    method: str

    def __sizeof__(self) -> int:
        return _nbytes(self)


def _columns(scores: np.ndarray) -> np.ndarray:
    """[n, K] scores (heads with one score give [n])."""
    scores = np.asarray(scores, float)
    return scores[:, None] if scores.ndim == 1 else scores


def head_scores(store_root: str | Path, head: TrainedHead, title: str) -> HeadScores:
    """Scores of the title's shots, candidate clips and break cuts under a clip head, every class.

    As `apply.shot_scores`, `apply.top_clips` and `apply.break_candidates` compute them (default
    proposal lengths, the head's median clip before each cut); HeadError when the head does not
    fit the store or title."""
    scorer = _TitleScorer(store_root, head)
    card = scorer.head.card
    scorer.check([title])
    shots = apply.shot_spans(scorer.store, [title])
    clips = apply.candidate_spans(scorer, [title], prop.ProposalConfig(max_overlap=1.0))  # as top_clips
    first = card.classes[0] if card.task in PER_CLASS_KINDS else None
    cuts = apply.break_candidates(store_root, scorer, [title], brk.BreakConfig(), first)
    cut_scores = scorer.score(cuts) if first is not None else cuts["score"].to_numpy(float)
    return HeadScores(
        shot_index=shots["first_shot"].to_numpy(np.int64), shot_start=shots["start"].to_numpy(float),
        shot_end=shots["end"].to_numpy(float), shot_scores=_columns(scorer.score(shots)),
        clip_start=clips["start"].to_numpy(float), clip_end=clips["end"].to_numpy(float),
        clip_scores=_columns(scorer.score(clips)),
        cut_shot=cuts["shot"].to_numpy(np.int64), cut_time=cuts["time_s"].to_numpy(float),
        cut_allowed=cuts["allowed"].to_numpy(bool), cut_scores=_columns(cut_scores),
        thresholds=tuple(float(t) for t in card.thresholds))


def column(head: TrainedHead, cls: str | None) -> int:
    """The scores column of `cls` (0 for heads with one score)."""
    return head.card.classes.index(cls) if head.card.task in PER_CLASS_KINDS else 0


def shots(s: HeadScores, col: int) -> list[tuple[int, float, float, float]]:
    """(shot index, start, end, score) of every shot, as `apply.shot_scores`."""
    return list(zip(s.shot_index.tolist(), s.shot_start.tolist(), s.shot_end.tolist(), s.shot_scores[:, col].tolist()))


def top_clips(s: HeadScores, col: int, k: int) -> list[tuple[int, float, float, float]]:
    """(rank, start, end, score) of the k best clips not overlapping each other, as `apply.top_clips`."""
    spans = np.stack([s.clip_start, s.clip_end], axis=1)
    keep = prop.top_k(spans, s.clip_scores[:, col], k)
    return [(rank, float(s.clip_start[i]), float(s.clip_end[i]), float(s.clip_scores[i, col]))
            for rank, i in enumerate(keep.tolist(), start=1)]


def breaks(s: HeadScores, col: int, spacing_s: float) -> list[tuple[int, float, float]]:
    """(shot, time, score) of the chosen ad breaks, as `apply.ad_breaks` with this spacing (and the
    column's CV threshold as the score floor)."""
    score = s.cut_scores[:, col]
    floor = s.thresholds[col] if s.thresholds else None
    chosen = brk.pick_breaks(s.cut_time, score, s.cut_allowed, spacing_s, floor, None)
    return [(int(s.cut_shot[i]), float(s.cut_time[i]), float(score[i])) for i in chosen.tolist()]


def scene_cuts(store_root: str | Path, title: str, head: TrainedHead | None = None, embedding: str = "fused",
               model_id: str | None = None) -> SceneCuts:
    """`apply.scene_cuts` of one title: a scene head's, or the unsupervised ones on `embedding`."""
    if head is not None:
        cuts = apply.scene_cuts(store_root, [title], head=_TitleScorer(store_root, head))
    else:
        cuts = apply.scene_cuts(store_root, [title], embedding=embedding, model_id=model_id)
    return SceneCuts(shot=cuts["shot"].to_numpy(np.int64), time_s=cuts["time_s"].to_numpy(float),
                     score=cuts["score"].to_numpy(float), boundary=cuts["boundary"].to_numpy(bool),
                     method=str(cuts["method"].iloc[0]) if len(cuts) else "")
