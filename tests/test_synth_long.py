"""Catalog presets: long-form titles (150-600 shots) and dissolves/fades at scene boundaries."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from mediafm.media.decode import iter_frames
from mediafm.synth.render import AUDIO_RATE, RenderConfig, render_title, shot_frames, title_audio, title_frames
from mediafm.synth.story import STORY_PRESETS, TRANSITION_KINDS, StoryConfig, labels_for, make_story

LONG = STORY_PRESETS["long"]
# Three two-shot scenes, every scene change a transition: renders in well under a second at 64x48.
BLENDED = StoryConfig(min_scenes=3, max_scenes=3, min_shots_per_scene=2, max_shots_per_scene=2,
                      min_shot_frames=16, max_shot_frames=16, transition_p=1.0)
TINY = RenderConfig(width=64, height=48)


@pytest.mark.parametrize("name", sorted(STORY_PRESETS))
def test_every_preset_makes_stories_with_labels(name):
    cfg = STORY_PRESETS[name]
    story = make_story(0, 0, cfg)
    rows = labels_for(story, cfg)
    assert len(rows["genre"]) == cfg.clips_per_title and rows["retrieval"][0][3] == "1"


def test_long_titles_have_150_to_600_shots_and_valid_labels():
    for seed in (0, 1, 2):
        for i in range(6):
            story = make_story(i, seed, LONG)
            assert 150 <= len(story.shots) <= 600
            assert all(3 <= sc.n_shots <= 8 for sc in story.scenes)
            assert all(16 <= s.n_frames <= 24 for s in story.shots)
            for s, nxt in zip(story.shots, story.shots[1:]):
                assert s.start_frame + s.n_frames == nxt.start_frame  # shots tile the title
            rows = labels_for(story, LONG)
            assert {len(rows[t]) for t in ("genre", "tone", "ad_relevancy", "popularity")} == {LONG.clips_per_title}
            assert [r[3] for r in rows["retrieval"]] == ["1", "0", "0", "0"]
            for task in rows.values():
                for title, start, end, _ in task:
                    assert title == story.title and 0 < start < end < story.duration_s


def test_transitions_sit_at_scene_boundaries_and_keep_shot_timings():
    n_boundaries = n_transitions = 0
    for i in range(6):
        story = make_story(i, 4, LONG)
        firsts = {sc.first_shot for sc in story.scenes[1:]}
        for t in story.transitions:
            assert t.shot in firsts and t.kind in TRANSITION_KINDS
            assert LONG.min_transition_frames <= t.n_frames <= LONG.max_transition_frames
            assert t.start_frame + t.n_frames // 2 == story.shots[t.shot].start_frame  # centred on the cut
        n_boundaries += len(firsts)
        n_transitions += len(story.transitions)
        # Transitions come from their own random stream: without them the story is the same.
        hard = make_story(i, 4, dataclasses.replace(LONG, transition_p=0.0))
        assert hard.transitions == [] and hard.shots == story.shots and hard.scenes == story.scenes
    assert abs(n_transitions / n_boundaries - LONG.transition_p) < 0.07


def test_default_catalog_is_unchanged():
    # Digest of stories and labels of the default configuration, computed before presets and
    # transitions existed: existing catalog seeds must keep producing the same titles.
    h = hashlib.sha256()
    for seed in (0, 3):
        for i in range(6):
            story = make_story(i, seed)
            d = story.to_dict()
            assert d.pop("transitions") == []
            h.update(json.dumps([d, labels_for(story)]).encode())
    assert h.hexdigest()[:16] == "fe1f3a9c6fd65de8"
    assert STORY_PRESETS["narrative"] == StoryConfig()


def test_subtle_scenes_open_without_marks_and_often_stay_put():
    sub = STORY_PRESETS["subtle"]
    changes = opened = stayed = 0
    for i in range(40):
        story = make_story(i, 5, sub)
        for sc, prev in zip(story.scenes[1:], story.scenes):
            changes += 1
            opened += story.shots[sc.first_shot].kind == "establishing"
            stayed += sc.location == prev.location
        for sc in story.scenes:  # character shots still alternate between the scene's pair
            chars = [s for s in story.shots[sc.first_shot:sc.first_shot + sc.n_shots] if s.kind == "character"]
            assert [s.character for s in chars] == [sc.characters[j % 2] for j in range(len(chars))]
            assert [s.angle for s in chars] == [j % 2 for j in range(len(chars))]
        assert all(s.kind == "character" for s in story.shots if s.index not in {sc.first_shot for sc in story.scenes})
        rows = labels_for(story, sub)
        assert len(rows["ad_relevancy"]) == sub.clips_per_title
    assert abs(opened / changes - sub.establishing_p) < 0.08
    # a scene stays with location_stay_p, and never does otherwise (the default rule moves it)
    assert abs(stayed / changes - sub.location_stay_p) < 0.08
    # the marks come from their own generator: with every mark on, the narrative story comes back
    marked = dataclasses.replace(sub, establishing_p=1.0, location_stay_p=0.0)
    assert make_story(3, 5, marked).to_dict() == make_story(3, 5).to_dict()


@pytest.mark.parametrize("field", ["establishing_p", "location_stay_p", "transition_p"])
def test_scene_mark_probabilities_are_checked(field):
    with pytest.raises(ValueError, match=field):
        StoryConfig(**{field: 1.5})


def _with_kinds(story, kinds):
    """The story with its transitions' kinds replaced, so both kinds are rendered."""
    assert len(story.transitions) == len(story.scenes) - 1  # transition_p=1: every scene change
    story.transitions = [dataclasses.replace(t, kind=k) for t, k in zip(story.transitions, kinds)]
    return story


def test_dissolve_blends_and_fade_darkens_around_the_cut():
    story = _with_kinds(make_story(0, 6, BLENDED), ("dissolve", "fade"))
    plain = np.concatenate([shot_frames(s, story, TINY) for s in story.shots]).astype(np.int16)
    frames = np.stack(list(title_frames(story, TINY))).astype(np.int16)
    assert frames.shape == plain.shape
    inside = np.zeros(len(plain), bool)
    for t in story.transitions:
        cut, before = story.shots[t.shot].start_frame, t.n_frames // 2
        inside[t.start_frame:t.start_frame + t.n_frames] = True
        for f in range(t.start_frame, t.start_frame + t.n_frames):
            # the two pictures mixed at frame f: the outgoing shot (held after the cut), the incoming
            # shot (held before it)
            a, b = plain[min(f, cut - 1)], plain[max(f, cut)]
            if t.kind == "dissolve":
                assert np.all(frames[f] >= np.minimum(a, b) - 1) and np.all(frames[f] <= np.maximum(a, b) + 1)
                if f in (cut - 1, cut):  # halfway: clearly neither picture alone
                    assert np.abs(frames[f] - a).mean() > 5 and np.abs(frames[f] - b).mean() > 5
            else:
                assert frames[f].mean() < plain[f].mean()
                if f in (cut - 1, cut):
                    assert frames[f].mean() < 0.2 * plain[f].mean()
        assert before >= 1
    assert np.array_equal(frames[~inside], plain[~inside])  # outside the windows: untouched


def test_transition_audio_and_render(tmp_path):
    story = _with_kinds(make_story(1, 6, BLENDED), ("fade", "dissolve"))
    audio = title_audio(story)
    assert len(audio) == round(story.duration_s * AUDIO_RATE) and np.isfinite(audio).all()
    fade = story.transitions[0]
    cut = round(story.shots[fade.shot].start_frame / story.fps * AUDIO_RATE)
    near, away = audio[cut - 200:cut + 200], audio[cut - 8000:cut - 4000]
    assert np.sqrt(np.mean(near ** 2)) < 0.1 * np.sqrt(np.mean(away ** 2))
    video = render_title(story, tmp_path, TINY)
    assert sum(1 for _ in iter_frames(video)) == story.n_frames
    truth = json.loads(json.dumps(story.to_dict()))
    assert [t["kind"] for t in truth["transitions"]] == ["fade", "dissolve"]


def test_cli_preset_and_overrides(tmp_path):
    from mediafm.cli import synth as cli
    from mediafm.cli.main import main

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    assert cli.story_config(p.parse_args(["out"])) == StoryConfig()
    cfg = cli.story_config(p.parse_args(["out", "--preset", "long", "--fps", "10", "--max-scenes", "40"]))
    assert cfg == dataclasses.replace(LONG, fps=10, max_scenes=40)
    out = tmp_path / "cat"
    assert main(["synth", str(out), "--titles", "1", "--max-scenes", "1", "--width", "64", "--height", "48",
                 "--workers", "1"]) == 0
    manifest = json.loads((out / "catalog.json").read_text())
    assert manifest["preset"] == "narrative" and manifest["story_config"]["max_scenes"] == 1
