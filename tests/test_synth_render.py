"""The synthetic catalog renders decodable media whose cuts, cues and labels match the latent story."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mediafm.media.decode import iter_frames, probe
from mediafm.media.metadata import load_metadata
from mediafm.media.subtitles import find_cues
from mediafm.synth.render import RenderConfig, render_title, synthesize_catalog
from mediafm.synth.story import GENRES, TONES, StoryConfig, labels_for, make_story
from mediafm.evaluation.grid import TASKS
from mediafm.evaluation.labels import read_labels, targets

SMALL = StoryConfig(min_scenes=2, max_scenes=3, min_shots_per_scene=3, max_shots_per_scene=3)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    story = make_story(0, 5, SMALL)
    out = tmp_path_factory.mktemp("synth")
    return story, render_title(story, out, RenderConfig(width=160, height=96))


def test_story_is_deterministic_and_consistent():
    a, b = make_story(7, 1), make_story(7, 1)
    assert a.to_dict() == b.to_dict()
    assert make_story(8, 1).to_dict() != a.to_dict()
    assert a.genre in GENRES and all(sc.tone in TONES for sc in a.scenes)
    frames = [s.start_frame for s in a.shots]
    assert frames == sorted(frames) and a.shots[0].start_frame == 0
    for s, nxt in zip(a.shots, a.shots[1:]):
        assert s.start_frame + s.n_frames == nxt.start_frame  # shots tile the title
    for sc in a.scenes:
        assert a.shots[sc.first_shot].kind == "establishing"
    assert 30 <= a.duration_s <= 75


def test_cues_are_noisy_but_informative():
    # Over many shots the tone cue matches the scene's tone at about cue_p + (1 - cue_p) / 4:
    # above chance (so context can resolve it) and well below 1 (so one shot is ambiguous).
    shots = [(s, st) for i in range(40) for st in [make_story(i, 3)] for s in st.shots]
    match = np.mean([s.tone_cue == st.scenes[s.scene].tone for s, st in shots])
    expected = StoryConfig().cue_p + (1 - StoryConfig().cue_p) / len(TONES)
    assert abs(match - expected) < 0.05
    assert match < 0.7


def test_rendered_files_decode_and_match_story(rendered):
    story, video = rendered
    info = probe(video)
    assert info.has_video and info.has_audio and info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(info.duration_s - story.duration_s) < 0.2
    frames = np.stack([f.image.astype(np.int16) for f in iter_frames(video)])
    assert len(frames) == story.n_frames
    # Hard cuts: the largest frame-to-frame changes are exactly the story's cut frames.
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    cuts = sorted(int(i) + 1 for i in np.argsort(diff)[-(len(story.shots) - 1):])
    assert cuts == [s.start_frame for s in story.shots[1:]]
    assert diff[np.array(cuts) - 1].min() > 3 * np.median(diff)


def test_subtitles_and_metadata_match_story(rendered):
    story, video = rendered
    cues, source, _ = find_cues(video)
    lines = [s for s in story.shots if s.line]
    assert source == "sidecar" or "srt" in source
    assert [c.text for c in cues] == [s.line for s in lines]
    for c, s in zip(cues, lines):  # each cue lies inside its shot
        assert s.start_s(story.fps) <= c.start_s < c.end_s <= s.end_s(story.fps)
    meta, warnings = load_metadata(video)
    assert warnings == []
    assert story.genre in meta.genres and len(meta.genres) == 2


def test_labels_follow_the_latent_story():
    story = make_story(2, 4)
    rows = labels_for(story)
    assert {len(rows[t]) for t in ("genre", "tone", "ad_relevancy", "popularity")} == {StoryConfig().clips_per_title}
    assert all(r[3] == story.genre for r in rows["genre"])
    assert [r[3] for r in rows["retrieval"]] == ["1", "0", "0", "0"]  # 1:3 positives to negatives
    climax = max(story.scenes, key=lambda s: s.tension)
    pos = rows["retrieval"][0]
    assert climax.first_shot <= _shot_at(story, pos[1]) and _shot_at(story, pos[2]) < climax.first_shot + climax.n_shots
    for title, start, end, label in rows["ad_relevancy"]:
        last = story.shots[_shot_at(story, end)]
        scene = story.scenes[last.scene]
        at_boundary = last.index == scene.first_shot + scene.n_shots - 1 and scene.index < len(story.scenes) - 1
        low = scene.tension < np.median([s.tension for s in story.scenes])
        assert label == str(int(at_boundary and low))


def _shot_at(story, t):
    return max(s.index for s in story.shots if s.start_s(story.fps) <= t)


def test_catalog_writes_parseable_labels_for_every_task(tmp_path):
    info = synthesize_catalog(tmp_path / "cat", 3, seed=9, story_cfg=SMALL,
                              render_cfg=RenderConfig(width=96, height=64), progress=False)
    assert sorted(p.name for p in info.videos.glob("*.mp4")) == [f"{t}.mp4" for t in info.titles]
    manifest = json.loads((tmp_path / "cat" / "catalog.json").read_text())
    for spec in TASKS:
        rows = read_labels(info.labels / spec.file)
        assert {r.clip.title for r in rows} == set(info.titles)
        targets(rows, spec.kind)  # every label fits its task kind
        assert manifest["tasks"][spec.name]["metric"] == spec.metric
    # re-running keeps finished videos (resume)
    mtime = (info.videos / f"{info.titles[0]}.mp4").stat().st_mtime_ns
    synthesize_catalog(tmp_path / "cat", 3, seed=9, story_cfg=SMALL, render_cfg=RenderConfig(width=96, height=64), progress=False)
    assert (info.videos / f"{info.titles[0]}.mp4").stat().st_mtime_ns == mtime
    # `first` renders the same catalog's later titles only, with their labels
    more = synthesize_catalog(tmp_path / "more", 4, seed=9, story_cfg=SMALL, first=3,
                              render_cfg=RenderConfig(width=96, height=64), progress=False)
    assert more.titles == [make_story(3, 9, SMALL).title] and more.titles[0] not in info.titles
    assert [p.stem for p in more.videos.glob("*.mp4")] == more.titles
    assert {r.clip.title for r in read_labels(more.labels / TASKS[0].file)} == set(more.titles)
    with pytest.raises(ValueError, match="first"):
        synthesize_catalog(tmp_path / "bad", 3, seed=9, story_cfg=SMALL, first=3, progress=False)


@pytest.mark.slow
def test_transnetv2_finds_the_story_cuts(rendered):
    from mediafm.shots.base import get_detector

    story, video = rendered
    det = get_detector("transnetv2")
    found = list(det.boundaries(f.rgb(*det.frame_size) for f in iter_frames(video)))
    truth = [s.start_frame for s in story.shots[1:]]
    hits = sum(any(abs(f - t) <= 1 for f in found) for t in truth)
    assert hits >= len(truth) - 1 and len(found) <= len(truth) + 1, (found, truth)


def test_one_scene_story_has_labels():
    """A one-scene title has no other scene for retrieval negatives: labels are still written."""
    story = make_story(3, 0, StoryConfig(min_scenes=1, max_scenes=1))
    rows = labels_for(story)
    assert [r[3] for r in rows["retrieval"]] == ["1"]
    assert rows["genre"] and all(r[3] == story.genre for r in rows["genre"])
