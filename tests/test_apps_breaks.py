"""Ad breaks on a store: spacing kept, never inside a subtitle cue, cue sources and fallback."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mediafm.apps import BreakConfig, ad_breaks, break_candidates, fit
from mediafm.apps.titles import title_cues
from mediafm.types import TitleRecord
from mediafm_testing.scenes import FAST_PROBE, clip_labels, scene_store


@pytest.fixture(scope="module")
def head_and_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("breaks")
    store, truth = scene_store(root / "store", n_titles=10, seed=2)
    labels = clip_labels(truth, root / "labels")
    return fit(store.root, labels / "calm_end.csv", "binary", "contextual", config=FAST_PROBE).head, store, truth


@pytest.mark.parametrize("spacing", [0.0, 6.0, 20.0])
def test_breaks_keep_spacing_and_never_split_a_cue(head_and_store, spacing):
    head, store, truth = head_and_store
    cands = break_candidates(store.root, head, config=BreakConfig(min_spacing_s=spacing, min_score=-np.inf))
    assert cands["cues_known"].all()
    for t, g in cands.groupby("title"):
        cues = np.array([(c.start_s, c.end_s) for c in truth[t].cues])
        inside = ((cues[None, :, 0] < g["time_s"].to_numpy()[:, None]) & (g["time_s"].to_numpy()[:, None] < cues[None, :, 1])).any(1)
        assert inside.any()  # the fixture has lines running across cuts ...
        assert (g["allowed"].to_numpy() == ~inside).all()  # ... and exactly those cuts are refused
        chosen = g[g["chosen"]]
        assert len(chosen) >= 1 and not inside[g["chosen"].to_numpy()].any()
        assert (np.diff(chosen["time_s"].to_numpy()) >= spacing).all()
        if spacing == 0.0:  # no floor, no spacing: every allowed cut is a break
            assert g["chosen"].sum() == (~inside).sum()
    breaks = ad_breaks(store.root, head, config=BreakConfig(min_spacing_s=spacing, min_score=-np.inf))
    assert len(breaks) == cands["chosen"].sum() and set(breaks.columns) >= {"title", "time_s", "score", "shot"}


def test_default_floor_is_the_cv_threshold(head_and_store):
    head, store, truth = head_and_store
    breaks = ad_breaks(store.root, head, config=BreakConfig(min_spacing_s=0.0))
    assert (breaks["score"] >= head.card.thresholds[0]).all()
    capped = ad_breaks(store.root, head, config=BreakConfig(min_spacing_s=0.0, max_breaks=1))
    assert capped.groupby("title").size().max() == 1


def test_cues_from_the_source_or_a_conservative_fallback(tmp_path, head_and_store):
    head, _, _ = head_and_store
    store, truth = scene_store(tmp_path / "store", n_titles=3, seed=2, cues=False)
    t = "title00"
    assert store.cues(t) is None and title_cues(store, t) is None
    cands = break_candidates(store.root, head, titles=[t], config=BreakConfig(min_spacing_s=0.0))
    shots = store.shots(t)
    both_text = (shots["text"].to_numpy()[:-1] != "") & (shots["text"].to_numpy()[1:] != "")
    assert not cands["cues_known"].any() and (cands["allowed"].to_numpy() == ~both_text).all()
    # The title's source has a sidecar .srt: its cues are read from there.
    row = store.title(t)
    video = tmp_path / "title00.mp4"
    video.write_bytes(b"")
    video.with_suffix(".srt").write_text("1\n00:00:01,000 --> 00:00:09,000\nA long line.\n")
    from mediafm.store.catalog import Store

    shots_df = store.shots(t)
    store.write_title(replace(TitleRecord.from_row(row), path=str(video), subtitle_source="sidecar:title00.srt"),
                      shots_df, None, None)
    assert title_cues(Store(store.root), t).tolist() == [[1.0, 9.0]]
    cands = break_candidates(store.root, head, titles=[t], config=BreakConfig(min_spacing_s=0.0))
    times = cands["time_s"].to_numpy()
    assert cands["cues_known"].all() and (cands["allowed"].to_numpy() == ~((times > 1) & (times < 9))).all()


def test_empty_cue_table_with_transcribed_text_falls_back(tmp_path, head_and_store):
    head, _, _ = head_and_store
    store, _ = scene_store(tmp_path / "store", n_titles=3, seed=2, cues=False)
    t = "title00"
    store.write_cues(t, [])  # ingest found no subtitles; the shots' text came from speech later
    assert title_cues(store, t).shape[0] == 0
    cands = break_candidates(store.root, head, titles=[t], config=BreakConfig(min_spacing_s=0.0))
    text = store.shots(t)["text"].to_numpy() != ""
    assert text.any()
    assert not cands["cues_known"].any() and (cands["allowed"].to_numpy() == ~(text[:-1] & text[1:])).all()
    # No cues and no text at all: nothing is spoken, every cut is allowed and the cues are known.
    shots = store.shots(t).assign(text="", text_source="")
    store.write_shots(t, shots)
    cands = break_candidates(store.root, head, titles=[t], config=BreakConfig(min_spacing_s=0.0))
    assert cands["cues_known"].all() and cands["allowed"].all()


def test_an_edges_head_scores_each_cut_by_what_changes_across_it(head_and_store, tmp_path):
    """A head fitted on `mean+edges` clips records that read-out and applies it to every cut's clip:
    its scores are those of the clip ending at the cut, read with the shot after it."""
    from mediafm.apps.head import load_head, save_head
    from mediafm.evaluation.clips import Clip, ClipEmbedder

    _, store, truth = head_and_store
    labels = clip_labels(truth, tmp_path / "labels")
    head = fit(store.root, labels / "calm_end.csv", "binary", "contextual", pooling="mean+edges", config=FAST_PROBE).head
    assert head.card.embedding.pooling == "mean+edges"
    save_head(head, tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    cands = break_candidates(store.root, loaded, config=BreakConfig(min_spacing_s=0.0, min_score=-np.inf))
    row = cands.iloc[len(cands) // 2]
    emb = ClipEmbedder(store, "contextual", "mean+edges", model_id=store.model_ids()[0])
    x = emb.embed(Clip(row["title"], row["start"], row["end"]))
    assert np.isclose(row["score"], float(np.ravel(loaded.score(x[None]))[0]), atol=1e-5)
