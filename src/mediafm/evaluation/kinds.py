"""Task kinds: what a labels CSV's `label` column means and what shape a head's output has.

`TaskKind` is the type; `TASK_KINDS` the one list of its values (CLI choices, head cards); the
named groups below are subsets of it, so a new kind is added in one place.
"""

from __future__ import annotations

from typing import Literal, get_args

TaskKind = Literal["multiclass", "multilabel", "binary", "rank", "scenes"]
TASK_KINDS: tuple[TaskKind, ...] = get_args(TaskKind)

# Labelled clips, probed as they are: `scenes` labels scenes, which become cuts before a probe runs.
CLIP_KINDS: tuple[TaskKind, ...] = tuple(k for k in TASK_KINDS if k != "scenes")
# One output column per class (the others have a single score column).
PER_CLASS_KINDS: tuple[TaskKind, ...] = ("multiclass", "multilabel")
# Heads whose scores become labels at a threshold.
CLASSIFIER_KINDS: tuple[TaskKind, ...] = ("binary", *PER_CLASS_KINDS)
