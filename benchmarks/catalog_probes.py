"""What the probe-only benchmarks (readouts.py, probe_blocks.py, context_parts.py) share: the folder
`benchmarks/tasks.py` made for a catalog, its labelled clips, and one row of the five tasks probed
on a matrix of clip vectors with the grid's probes."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from mediafm.evaluation.clips import Clip
from mediafm.evaluation.grid import TASKS, load_tasks
from mediafm.evaluation.labels import LabeledClip, targets
from mediafm.evaluation.metrics import Score
from mediafm.evaluation.probes import ProbeConfig, run_probe


class Catalog(NamedTuple):
    root: Path  # the folder tasks.py made (store/, catalog/labels/, model/)
    labels: Path
    tasks: dict[str, list[LabeledClip]]
    clips: list[Clip]  # every labelled clip once, sorted by title
    index: dict[Clip, int]  # clip -> its row in a matrix over `clips`

    @property
    def store(self) -> Path:
        return self.root / "store"


def open_catalog(cache: str | Path, catalog: str, seed: int) -> Catalog:
    root = Path(cache) / (f"seed{seed}" if catalog == "narrative" else f"{catalog}-seed{seed}")
    labels = root / "catalog" / "labels"
    tasks = load_tasks(labels, TASKS)
    clips = sorted({r.clip for rows in tasks.values() for r in rows}, key=lambda c: (c.title, c.start, c.end))
    return Catalog(root, labels, tasks, clips, {c: i for i, c in enumerate(clips)})


def probe_row(cat: Catalog, X: np.ndarray, config: ProbeConfig) -> list[Score]:
    """The five tasks probed on X ([len(cat.clips), D], rows in cat.clips' order)."""
    cells = []
    for spec in TASKS:
        rows = cat.tasks[spec.name]
        Xi = X[[cat.index[r.clip] for r in rows]]
        groups = np.array([r.clip.title for r in rows])
        cells.append(run_probe(Xi, targets(rows, spec.kind, cat.labels / spec.file), groups, spec.metric, config).score)
    return cells


def table_head(first: str, second: str) -> str:
    return (f"| {first} | {second} | " + " | ".join(t.name for t in TASKS) + " |\n"
            + "|---|---|" + "---|" * len(TASKS))


def table_row(first: str, second: str, cells: list[Score]) -> str:
    return f"| {first} | {second} | " + " | ".join(f"{s.value:.3f}" for s in cells) + " |"
