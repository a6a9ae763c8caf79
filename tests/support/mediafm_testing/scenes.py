"""A small store with known scenes, clip scores and subtitle cues, for the applications' tests.

Written with the real `Store` writers. Each title is a run of scenes; a scene has a place and two
characters shown in alternation (shot / reverse shot), so neighbouring shots differ inside a scene
as much as across scenes, and only a scene-aware method finds the boundaries. Each scene has a
tension in [0, 1], written into the first vector dimension with noise; clip labels are functions
of it. Contextual embeddings (model id `model_id`) are each shot's vector joined with the mean of
its scene, what a model that has learnt scenes could give. Some cues run across a cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.store.catalog import Store
from mediafm.evaluation.labels import write_labels
from mediafm.evaluation.probes import ProbeConfig
from mediafm.types import Cue, TitleRecord

# Probe settings that keep the apps tests fast (3 folds, few bootstrap resamples).
FAST_PROBE = ProbeConfig(folds=3, inner_folds=2, n_boot=50)

ENCODERS = {"fused": {"name": "fixture-scenes", "version": "1", "dim": 0}}


@dataclass
class TitleTruth:
    title: str
    starts: np.ndarray  # shot starts (s)
    ends: np.ndarray
    scene_of_shot: np.ndarray
    tension: np.ndarray  # per scene
    cues: list[Cue] = field(default_factory=list)

    @property
    def scene_starts(self) -> np.ndarray:
        """Start time of every scene but the first."""
        first = np.flatnonzero(np.diff(self.scene_of_shot)) + 1
        return self.starts[first]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def scene_store(root: str | Path, n_titles: int = 12, dim: int = 16, seed: int = 0, model_id: str = "fixture-model",
                videos: bool = False, cues: bool = True) -> tuple[Store, dict[str, TitleTruth]]:
    """Write `n_titles` titles into a new store at `root`; returns the store and each title's truth."""
    store = Store(root, create=True)
    rng = np.random.default_rng(seed)
    truth: dict[str, TitleTruth] = {}
    for t in range(n_titles):
        tid = f"title{t:02d}"
        cast = _unit(rng.standard_normal((4, dim)))
        vecs, scene_ids, tensions = [], [], []
        for s in range(int(rng.integers(4, 7))):
            place = _unit(rng.standard_normal(dim))
            a, b = rng.choice(4, 2, replace=False)
            tension = float(rng.uniform())
            tensions.append(tension)
            for k in range(int(rng.integers(3, 7))):
                v = place + 0.9 * cast[a if k % 2 == 0 else b] + 0.25 * rng.standard_normal(dim)
                v[0] = 2.0 * tension + 0.2 * rng.standard_normal()
                vecs.append(v)
                scene_ids.append(s)
        fused = np.asarray(vecs, np.float32)
        scene_ids = np.asarray(scene_ids)
        n = len(fused)
        durations = rng.uniform(1.5, 3.0, n)
        ends = np.round(np.cumsum(durations), 3)
        starts = np.r_[0.0, ends[:-1]]
        title_cues: list[Cue] = []
        texts = []
        for i in range(n):
            if rng.random() < 0.5:  # a line inside the shot
                c = Cue(starts[i] + 0.2, ends[i] - 0.2, f"line {i}")
                title_cues.append(c)
                texts.append(c.text)
            else:
                texts.append("")
        for i in range(1, n, 3):  # a line running across the cut before shot i
            title_cues.append(Cue(starts[i] - 0.4, starts[i] + 0.4, f"across {i}"))
            texts[i - 1] = (texts[i - 1] + " across").strip()
            texts[i] = (texts[i] + " across").strip()
        video = Path(root).parent / f"{tid}.mp4"
        if videos:
            from mediafm_testing.stores import write_tiny_video

            write_tiny_video(video, float(ends[-1]) + 0.1, seed=t)
        shots = pd.DataFrame({"title_id": tid, "shot_index": np.arange(n), "start_frame": np.arange(n),
                              "end_frame": np.arange(n), "start_s": starts, "end_s": ends, "text": texts,
                              "text_source": ["subtitle" if x else "" for x in texts]})
        record = TitleRecord(title_id=tid, path=str(video), source_key=f"fixture-{tid}", duration_s=float(ends[-1]),
                             has_video=videos, width=64, height=64, n_frames=n, n_shots=n, detector="fixture",
                             subtitle_source="fixture" if cues else "", meta_json="{}")
        store.write_title(record, shots, None, None)
        if cues:  # after the title: committing a title replaces its cues
            store.write_cues(tid, title_cues)
        store.write_features(tid, {"fused": fused}, {"fused": {**ENCODERS["fused"], "dim": dim}})
        scene_mean = np.stack([fused[scene_ids == s].mean(0) for s in scene_ids])
        store.write_contextual(model_id, tid, np.concatenate([fused, scene_mean], 1), fused.mean(0),
                               {"model_id": model_id, "dim": 2 * dim})
        truth[tid] = TitleTruth(tid, starts, ends, scene_ids, np.asarray(tensions), title_cues)
    return store, truth


def clip_labels(truth: dict[str, TitleTruth], folder: str | Path, per_title: int = 8, seed: int = 0) -> Path:
    """Write labels for clips of 2-3 shots: popularity.csv (rank: mean scene tension), calm_end.csv
    (binary: ends at a scene's last shot and that scene is calm), tone.csv (multilabel: calm/tense
    scenes it overlaps) and scenes.csv (one row per scene). Returns the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    pop, calm, tone, scenes = [], [], [], []
    for t in truth.values():
        n = len(t.starts)
        last_of_scene = np.r_[t.scene_of_shot[1:] != t.scene_of_shot[:-1], True]
        ends_at = list(rng.choice(np.flatnonzero(last_of_scene[:-1]), per_title // 2))
        ends_at += list(rng.choice(np.arange(2, n), per_title - len(ends_at)))
        for last in ends_at:
            first = max(0, int(last) - int(rng.integers(1, 3)))
            sc = np.unique(t.scene_of_shot[first:last + 1])
            a, b = t.starts[first] + 0.1, t.ends[last] - 0.1
            pop.append((t.title, a, b, f"{t.tension[sc].mean():.4f}"))
            end_scene = t.scene_of_shot[last]
            calm.append((t.title, a, b, str(int(bool(last_of_scene[last]) and t.tension[end_scene] < 0.5))))
            tone.append((t.title, a, b, "|".join(sorted({"tense" if t.tension[s] > 0.5 else "calm" for s in sc}))))
        for s in np.unique(t.scene_of_shot):
            idx = np.flatnonzero(t.scene_of_shot == s)
            scenes.append((t.title, t.starts[idx[0]], t.ends[idx[-1]], f"scene {s}"))
    for name, rows in (("popularity", pop), ("calm_end", calm), ("tone", tone), ("scenes", scenes)):
        write_labels(folder / f"{name}.csv", rows)
    return folder
