"""The comparison grid: embedding kinds x benchmark tasks, each cell a cross-validated probe.

Reads one labels CSV per task from a folder (names in TASKS), embeds every labelled clip once per
embedding kind, runs the probes and writes a Markdown table and JSON.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediafm.errors import ConfigError, StoreError
from mediafm.evaluation.clips import DEFAULT_POOLING, EMBEDDING_KINDS, STORED_KINDS, ClipEmbedder
from mediafm.evaluation.kinds import TaskKind
from mediafm.evaluation.labels import LabeledClip, read_labels, targets
from mediafm.evaluation.metrics import Score
from mediafm.evaluation.probes import ProbeConfig, run_probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    file: str  # labels CSV name inside the labels folder
    kind: TaskKind  # one of CLIP_KINDS
    metric: str  # as Netflix reported each task


# The five MediaFM evaluations, with the metric Netflix reported for each.
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("genre", "genre.csv", "multiclass", "macro_ap"),
    TaskSpec("tone", "tone.csv", "multilabel", "micro_ap"),
    TaskSpec("ad_relevancy", "ad_relevancy.csv", "binary", "mean_ap"),
    TaskSpec("popularity", "popularity.csv", "rank", "kendall_tau"),
    TaskSpec("retrieval", "retrieval.csv", "binary", "ap"),
)


@dataclass
class Grid:
    rows: list[str]
    columns: list[TaskSpec]
    cells: dict[tuple[str, str], Score] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # row -> why it was not run
    seconds: dict[str, float] = field(default_factory=dict)  # row -> embedding + probe time
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"tasks": [t.__dict__ for t in self.columns], "rows": self.rows,
                "cells": {r: {t.name: self.cells[(r, t.name)].to_dict() for t in self.columns if (r, t.name) in self.cells}
                          for r in self.rows},
                "skipped": self.skipped, "seconds": self.seconds, "info": self.info}

    def to_markdown(self) -> str:
        head = "| embedding | " + " | ".join(f"{t.name} ({_METRIC_NAMES[t.metric]})" for t in self.columns) + " |"
        lines = [head, "|" + "---|" * (len(self.columns) + 1)]
        best = {t.name: max((self.cells[(r, t.name)].value for r in self.rows if (r, t.name) in self.cells), default=None)
                for t in self.columns}
        for r in self.rows:
            if r in self.skipped:
                lines.append(f"| {r} | " + " | ".join("-" for _ in self.columns) + " |")
                continue
            cells = []
            for t in self.columns:
                s = self.cells.get((r, t.name))
                text = "-" if s is None else f"{s.value:.3f} [{s.low:.3f}, {s.high:.3f}]"
                cells.append(f"**{text}**" if s is not None and s.value == best[t.name] else text)
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
        notes = [f"- {r}: not run ({why})" for r, why in self.skipped.items()]
        foot = ("\nValues: out-of-fold metric over all clips, 5-fold CV grouped by title; brackets: 95% "
                "bootstrap interval over titles. Bold: best per column.")
        return "\n".join(lines + ([""] + notes if notes else [])) + "\n" + foot + "\n"


_METRIC_NAMES = {"macro_ap": "macro AP", "micro_ap": "micro AP", "mean_ap": "mAP", "kendall_tau": "Kendall tau", "ap": "AP"}


def load_tasks(labels_dir: str | Path, tasks: tuple[TaskSpec, ...] = TASKS) -> dict[str, list[LabeledClip]]:
    """The labels of each task found in labels_dir (a folder missing every task file is an error)."""
    labels_dir = Path(labels_dir)
    found = {t.name: read_labels(labels_dir / t.file) for t in tasks if (labels_dir / t.file).exists()}
    if not found:
        raise ConfigError(labels_dir, f"no task labels found; expected some of {', '.join(t.file for t in tasks)}")
    return found


def run_grid(store_root: str | Path, labels_dir: str | Path, model_dir: str | Path | None = None,
             kinds: tuple[str, ...] = EMBEDDING_KINDS, tasks: tuple[TaskSpec, ...] = TASKS,
             pooling: str = DEFAULT_POOLING, config: ProbeConfig | None = None, progress: bool = True) -> Grid:
    """Probe every embedding kind on every task found in labels_dir.

    Rows needing a model (contextual, contextual-isolated) are skipped, with the reason recorded,
    when no model is given and the store holds no contextual embeddings (or several models' and
    none is named). Any other failure of a row, a model given but unreadable included, raises.
    """
    config = config if config is not None else ProbeConfig()
    from tqdm import tqdm

    from mediafm.store.catalog import Store

    store = Store(store_root)
    labelled = load_tasks(labels_dir, tasks)
    specs = [t for t in tasks if t.name in labelled]
    grid = Grid(list(kinds), specs)
    # Clips whose title is not in the store (e.g. it failed ingest) are dropped, and counted.
    kept: dict[str, list[LabeledClip]] = {}
    for name, rows in labelled.items():
        kept[name] = [r for r in rows if store.has_title(r.clip.title)]
        if len(kept[name]) < len(rows):
            log.warning("%s: %d of %d clips name titles not in the store; dropped", name, len(rows) - len(kept[name]), len(rows))
    grid.info = {"store": str(store_root), "labels": str(labels_dir), "model": str(model_dir) if model_dir else None,
                 "pooling": pooling, "probe": config.__dict__,
                 "clips": {n: len(v) for n, v in kept.items()}, "titles": len(store.title_ids())}
    clips = sorted({r.clip for rows in kept.values() for r in rows}, key=lambda c: (c.title, c.start, c.end))
    bar = tqdm(total=len(kinds) * len(specs), desc="eval: probes", unit="cell", disable=not progress)
    for kind in kinds:
        t0 = time.time()
        if kind in STORED_KINDS and clips and kind not in store.feature_columns(clips[0].title):
            grid.skipped[kind] = f"the store was encoded without {kind!r}"  # e.g. without film descriptors
            bar.update(len(specs))
            continue
        try:
            embedder = ClipEmbedder.open(store_root, kind, model_dir, pooling)
        except StoreError as exc:
            # Only "no model to read" skips a row: a model that was given must load, or the
            # grid would report a missing row instead of an error.
            if kind not in ("contextual", "contextual-isolated") or model_dir is not None:
                raise
            grid.skipped[kind] = exc.problem
            bar.update(len(specs))
            continue
        X = embedder.embed_many(clips, progress=progress)
        index = {c: i for i, c in enumerate(clips)}
        probe = embedder.probe_config(config, X, clips[0].title) if clips else config
        for spec in specs:
            rows = kept[spec.name]
            tg = targets(rows, spec.kind, Path(labels_dir) / spec.file)
            Xi = X[[index[r.clip] for r in rows]]
            groups = np.array([r.clip.title for r in rows])
            grid.cells[(kind, spec.name)] = run_probe(Xi, tg, groups, spec.metric, probe).score
            bar.update()
        grid.seconds[kind] = time.time() - t0
    bar.close()
    return grid


def write_reports(grid: Grid, out_dir: str | Path) -> tuple[Path, Path]:
    """Write out_dir/eval.md and out_dir/eval.json; returns their paths."""
    from mediafm.store.atomic import write_json_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "eval.md", out_dir / "eval.json"
    md.write_text(grid.to_markdown())
    write_json_atomic(grid.to_dict(), js)
    return md, js
