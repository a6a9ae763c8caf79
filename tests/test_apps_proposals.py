"""Candidate clips and ad-break picking (pure): shot boundaries, length range, overlap, spacing, cues."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mediafm.apps import breaks as brk
from mediafm.apps import proposals as prop

durations = st.lists(st.floats(0.2, 12.0), min_size=1, max_size=40)


def _shots(d):
    ends = np.cumsum(d)
    return ends - np.asarray(d), ends


@settings(max_examples=200, deadline=None)
@given(durations, st.floats(0.0, 20.0), st.floats(0.0, 40.0), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_candidates_sit_on_shot_boundaries_within_the_length_range(d, lo, extra, overlap, seed):
    starts, ends = _shots(d)
    hi = lo + extra
    scenes = np.sort(np.random.default_rng(seed).integers(0, 4, len(d)))
    for scene_ids in (None, scenes):
        runs = prop.propose(starts, ends, lo, hi, overlap, scene_ids)
        spans = prop.span_seconds(runs, starts, ends)
        assert set(spans[:, 0]) <= set(starts) and set(spans[:, 1]) <= set(ends)
        assert np.all(spans[:, 1] - spans[:, 0] >= lo) and np.all(spans[:, 1] - spans[:, 0] <= hi)
        assert np.all(runs[:, 0] <= runs[:, 1])
        if scene_ids is not None:
            assert np.all(scene_ids[runs[:, 0]] == scene_ids[runs[:, 1]])
        for i in range(len(spans)):  # deduplicated: no two kept candidates overlap by more than `overlap`
            others = np.delete(spans, i, axis=0)
            assert not len(others) or prop.iou(spans[i], others).max() <= overlap + 1e-12


def test_every_run_in_range_is_proposed_before_deduplication():
    starts, ends = _shots([2.0, 3.0, 4.0, 1.0])
    # shots last 2, 3, 4, 1 s: runs of 4..8 s are 0-1 (5 s), 1-2 (7), 1-3 (8), 2 (4), 2-3 (5); 0-2 is 9 s
    assert prop.shot_runs(starts, ends, 4.0, 8.0).tolist() == [[0, 1], [1, 2], [1, 3], [2, 2], [2, 3]]
    assert prop.shot_runs(starts, ends, 4.0, 8.0, np.array([0, 0, 1, 1])).tolist() == [[0, 1], [2, 2], [2, 3]]
    # deduplicated in time order: 1-2 overlaps 0-1 by IoU 3/9 (kept), 1-3 and 2 overlap 1-2 by 7/10 and
    # 4/7 (dropped), 2-3 overlaps it by 4/8 (kept)
    assert prop.propose(starts, ends, 4.0, 8.0, 0.5).tolist() == [[0, 1], [1, 2], [2, 3]]


@settings(max_examples=200, deadline=None)
@given(durations, st.integers(1, 6), st.integers(0, 10_000))
def test_top_k_picks_do_not_overlap_and_come_best_first(d, k, seed):
    starts, ends = _shots(d)
    runs = prop.shot_runs(starts, ends, 0.0, 15.0)
    spans = prop.span_seconds(runs, starts, ends)
    scores = np.random.default_rng(seed).normal(size=len(runs))
    pick = prop.top_k(spans, scores, k)
    assert len(pick) <= k and np.all(np.diff(scores[pick]) <= 0)
    for i in range(len(pick)):
        for j in range(i + 1, len(pick)):
            a, b = spans[pick[i]], spans[pick[j]]
            assert min(a[1], b[1]) - max(a[0], b[0]) <= 0
    assert scores.argmax() == pick[0]


@settings(max_examples=200, deadline=None)
@given(durations, st.floats(0.0, 30.0), st.integers(0, 10_000), st.one_of(st.none(), st.integers(1, 5)))
def test_breaks_keep_their_spacing_and_never_split_a_cue(d, spacing, seed, max_breaks):
    starts, ends = _shots(d)
    rng = np.random.default_rng(seed)
    times = brk.cut_times(starts)
    mids = rng.uniform(0, ends[-1], 6)
    cues = np.stack([mids - rng.uniform(0.1, 3, 6), mids + rng.uniform(0.1, 3, 6)], axis=1)
    scores = rng.normal(size=len(times))
    allowed = ~brk.inside_cues(times, cues)
    chosen = brk.pick_breaks(times, scores, allowed, spacing, None, max_breaks)
    assert np.all(np.diff(times[chosen]) >= spacing) and np.all(allowed[chosen])
    for t in times[chosen]:
        assert not np.any((cues[:, 0] < t) & (t < cues[:, 1]))
    if max_breaks is not None:
        assert len(chosen) <= max_breaks
    # greedy by score: the best allowed cut is always taken
    if allowed.any() and (max_breaks or 1) >= 1:
        assert np.flatnonzero(allowed)[scores[allowed].argmax()] in chosen


def test_cue_edges_and_score_floor():
    times = np.array([1.0, 2.0, 3.0])
    cues = np.array([[0.0, 1.0], [2.0, 2.5], [2.9, 3.1]])
    assert brk.inside_cues(times, cues).tolist() == [False, False, True]  # a cue ending or starting at a cut is whole
    chosen = brk.pick_breaks(times, np.array([0.9, 0.1, 0.8]), np.array([True, True, True]), 0.0, min_score=0.5)
    assert chosen.tolist() == [0, 2]


def test_clip_before_a_cut_is_closest_to_the_asked_length():
    starts, ends = _shots([2.0, 2.0, 2.0, 2.0])
    assert brk.clip_before(starts, ends, 3, 4.1) == 2  # shots 2..3 last 4 s
    assert brk.clip_before(starts, ends, 3, 0.1) == 3  # at least the last shot
    assert brk.clip_before(starts, ends, 1, 100.0) == 0  # at most from the title's start
