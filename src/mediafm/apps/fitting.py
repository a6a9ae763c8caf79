"""`fit`: train a probe head once on every labelled clip, with a card saying what it is and how
well the same procedure did on unseen titles (grouped CV, as `mediafm probe` reports it).

Clip tasks (multiclass, multilabel, binary, rank) embed and pool clips exactly as `probe` does.
The `scenes` task reads scenes instead (one labels row per scene; the label text is free), turns
them into one 0/1 target per cut between shots (1: a scene starts there) and fits the same probe
on `mediafm.apps.segmentation.gap_features`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mediafm.apps.breaks import cut_times
from mediafm.apps.head import EmbeddingSpec, HeadCard, HeadError, TrainedHead
from mediafm.apps.segmentation import DEFAULT_WINDOW, boundary_targets, gap_features
from mediafm.apps.thresholds import best_f1_thresholds
from mediafm.apps.titles import check_clips, load_timeline
from mediafm.store.catalog import Store
from mediafm.evaluation.clips import DEFAULT_POOLING, ClipEmbedder, shot_dim
from mediafm.evaluation.kinds import TaskKind
from mediafm.evaluation.labels import LabeledClip, LabelsError, Targets, read_labels, targets
from mediafm.evaluation.probes import ProbeConfig, ProbeResult, fit_probe

# A labelled scene start counts for the nearest cut if it is this close (annotations and detected
# cuts can disagree by a few frames).
SCENE_TOLERANCE_S = 0.5


@dataclass
class FitResult:
    head: TrainedHead
    cv: ProbeResult  # grouped-CV metric and out-of-fold scores
    targets: Targets
    groups: np.ndarray  # title per training row


def fit(store_root: str | Path, labels: str | Path, task: TaskKind, embedding: str = "fused",
        model_dir: str | Path | None = None, pooling: str = DEFAULT_POOLING, config: ProbeConfig | None = None,
        metric: str | None = None, window: int = DEFAULT_WINDOW, progress: bool = False,
        model_id: str | None = None, weigh_parts: bool = True) -> FitResult:
    """Fit a head on all labelled clips of a store.

    Args:
        store_root: the catalog store.
        labels: labels CSV (title,start,end,label); every title must be in the store and every
            clip inside its title.
        task: a task kind (mediafm.evaluation.kinds.TASK_KINDS).
        embedding: an embedding kind (mediafm.evaluation.clips.EMBEDDING_KINDS).
        model_dir: model for contextual kinds (default: the store's contextual table of
            `model_id`, or its only one).
        pooling, config, metric: as for `mediafm probe`.
        window: scenes task only: shots on each side of a cut.
        weigh_parts: give each part of the embedding an equal share of the probe's variance
            (ProbeConfig.blocks, as `mediafm probe` does); False keeps `config.blocks`.

    Returns:
        FitResult; save its head with `mediafm.apps.head.save_head`.
    """
    config = config if config is not None else ProbeConfig()
    store = Store(store_root)
    rows = read_labels(labels)
    check_clips(store, [r.clip for r in rows], labels, [r.line for r in rows])
    embedder = ClipEmbedder.open(store_root, embedding, model_dir, pooling, model_id)
    titles = sorted({r.clip.title for r in rows})
    if task == "scenes":
        if embedding == "contextual-isolated":
            raise HeadError(None, "scene heads need per-shot embeddings; contextual-isolated has none")
        X, tg, groups, lengths = _scene_rows(store, embedder, rows, labels, window)
        metric = metric or "ap"
        # Scene heads keep the C grid down to 0.001 only: the stronger end was measured on clip
        # tasks (docs/tasks.md), and on a scene head it shrank the scores until the cut threshold
        # marked no boundary (tests/test_serve_apps.py).
        config = replace(config, c_grid=tuple(c for c in config.c_grid if c >= 0.001) or config.c_grid)
    else:
        tg = targets(rows, task, labels)
        X = embedder.embed_many([r.clip for r in rows], progress=progress)
        groups = np.array([r.clip.title for r in rows])
        lengths = np.array([r.clip.end - r.clip.start for r in rows])
        if rows and weigh_parts:  # the embedding's parts, each weighed equally by the probe (ProbeConfig.blocks)
            config = embedder.probe_config(config, X, rows[0].clip.title)
    fitted = fit_probe(X, tg, groups, metric, config)
    thresholds, f1 = best_f1_thresholds(tg.y, fitted.oof_at_c) if tg.kind != "rank" else ((), ())
    s = fitted.cv.score
    spec = EmbeddingSpec(kind=embedding, pooling=pooling,
                         dim=shot_dim(int(X.shape[1]), pooling) if task != "scenes" else int(X.shape[1] // 2),
                         model_id=embedder.model_id, encoders=store.check_encoders(titles))
    card = HeadCard(task=task, classes=tuple(tg.classes), embedding=spec, probe=config.head, c=fitted.c,
                    metric=s.metric, value=s.value, ci_low=s.low, ci_high=s.high, folds=config.folds,
                    n_clips=len(X), titles=tuple(titles),
                    clip_s=(float(lengths.min()), float(np.median(lengths)), float(lengths.max())),
                    thresholds=tuple(float(t) for t in thresholds), cv_f1=tuple(float(v) for v in f1),
                    window=window if task == "scenes" else 0, labels=str(Path(labels)), store=str(Path(store_root)))
    return FitResult(TrainedHead(card, fitted.head), fitted.cv, tg, groups)


def _scene_rows(store: Store, embedder: ClipEmbedder, rows: list[LabeledClip], labels, window: int):
    """Per cut of every labelled title: gap features and 1 if a labelled scene starts there."""
    by_title: dict[str, list[LabeledClip]] = {}
    for r in rows:
        by_title.setdefault(r.clip.title, []).append(r)
    X, y, groups = [], [], []
    for title, scenes in sorted(by_title.items()):
        tl = load_timeline(store, title)
        if tl.n_shots < 2:
            continue
        edges = {s.clip.start for s in scenes} | {s.clip.end for s in scenes}
        inner = [e for e in sorted(edges) if tl.starts[0] + SCENE_TOLERANCE_S < e < tl.ends[-1] - SCENE_TOLERANCE_S]
        X.append(gap_features(embedder.shot_vectors(title), window))
        y.append(boundary_targets(cut_times(tl.starts), inner, SCENE_TOLERANCE_S))
        groups += [title] * (tl.n_shots - 1)
    if not X:
        raise LabelsError(labels, "no labelled title has two shots or more: no cuts to learn scene boundaries from")
    y = np.concatenate(y)
    if y.sum() == 0:
        raise LabelsError(labels, "no labelled scene starts at a cut between shots (within "
                          f"{SCENE_TOLERANCE_S} s); each row should be one scene (title,start,end,name)")
    lengths = np.array([r.clip.end - r.clip.start for r in rows])
    return np.concatenate(X).astype(np.float64), Targets("binary", y, ("0", "1")), np.array(groups), lengths
