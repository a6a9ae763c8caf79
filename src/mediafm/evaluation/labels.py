"""Clip labels: one CSV format for every task.

    title,start,end,label
    my_film,12.0,18.5,tense|sad

`title` is the video's file stem (the store's title id), `start`/`end` are seconds on the title's
timeline, `label` is a class (multiclass, binary), classes joined by `|` (multilabel), or a number
(rank). Lines starting with `#` are comments. Errors name the file and the line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediafm.errors import MediafmError
from mediafm.evaluation.clips import Clip
from mediafm.evaluation.kinds import CLIP_KINDS, TaskKind

HEADER = ("title", "start", "end", "label")
_TRUE = {"1", "true", "yes", "pos", "positive"}
_FALSE = {"0", "false", "no", "neg", "negative"}


class LabelsError(MediafmError):
    """A labels CSV is malformed or does not fit the task."""


@dataclass(frozen=True)
class LabeledClip:
    clip: Clip
    label: str
    line: int  # 1-based line in the CSV, for error messages


@dataclass(frozen=True)
class Targets:
    """Labels turned into arrays for one task kind.

    `y` is [N] class indices (multiclass), [N, K] 0/1 (multilabel), [N] 0/1 (binary) or [N] floats
    (rank). `classes` names the columns/indices (empty for rank; ["0", "1"] for binary).
    """

    kind: TaskKind  # one of CLIP_KINDS
    y: np.ndarray
    classes: tuple[str, ...]


def read_labels(path: str | Path) -> list[LabeledClip]:
    """Read a labels CSV; raises LabelsError naming the file and line of the first bad row."""
    return _read(path, need_label=True)


def read_clips(path: str | Path) -> list[LabeledClip]:
    """Read clips to score: the labels format with the label column optional ("" when absent)."""
    return _read(path, need_label=False)


def _read(path: str | Path, need_label: bool) -> list[LabeledClip]:
    path = Path(path)
    noun = "labels" if need_label else "clips"
    if not path.exists():
        raise LabelsError(path, f"{noun} file does not exist")
    header = ",".join(HEADER if need_label else HEADER[:3])
    rows: list[LabeledClip] = []
    width = 0
    try:
        for lineno, row in enumerate(csv.reader(io.StringIO(_text(path, noun), newline="")), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in row]
            if not width:
                width = len(cells)
                names = tuple(c.lower() for c in cells)
                if names != HEADER and (need_label or names != HEADER[:3]):
                    raise LabelsError(path, f"line {lineno}: header must be {header}, got {','.join(cells)}")
                continue
            if len(cells) != width:
                raise LabelsError(path, f"line {lineno}: expected {width} fields ({header}), got {len(cells)}")
            title, start_s, end_s = cells[:3]
            label = cells[3] if width == 4 else ""
            if not title:
                raise LabelsError(path, f"line {lineno}: empty title")
            try:
                start, end = float(start_s), float(end_s)
            except ValueError:
                raise LabelsError(path, f"line {lineno}: start/end must be seconds, got {start_s!r}, {end_s!r}") from None
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
                raise LabelsError(path, f"line {lineno}: need 0 <= start < end, got start={start} end={end}")
            if need_label and not label:
                raise LabelsError(path, f"line {lineno}: empty label")
            rows.append(LabeledClip(Clip(title, start, end), label, lineno))
    except csv.Error as exc:  # a NUL byte, an unterminated quote at the end
        raise LabelsError(path, f"not a CSV file ({exc})") from None
    if not width:
        raise LabelsError(path, f"empty {noun} file (expected header {header})")
    if not rows:
        raise LabelsError(path, f"no {'labelled ' if need_label else ''}clips after the header")
    return rows


def _text(path: Path, noun: str) -> str:
    """The file's text: UTF-8 (a BOM allowed), else one line naming where the first bad byte is.

    Title ids must match the store's exactly, so a legacy code page is not guessed (a guess that
    reads a title's accents wrongly would silently drop its rows).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabelsError(path, f"cannot read the {noun} file ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LabelsError(path, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
                                f"save the {noun} file as UTF-8") from None


def write_labels(path: str | Path, rows: list[tuple[str, float, float, str]]) -> None:
    """Write (title, start, end, label) rows as a labels CSV (seconds with millisecond precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for title, start, end, label in rows:
            w.writerow([title, f"{start:.3f}", f"{end:.3f}", label])


def targets(rows: list[LabeledClip], kind: TaskKind, path: str | Path | None = None) -> Targets:
    """Turn labels into arrays for a task kind; LabelsError names the first row that does not fit."""
    if kind not in CLIP_KINDS:
        raise LabelsError(path, f"unknown task {kind!r}; choose one of {', '.join(CLIP_KINDS)}")
    if kind == "rank":
        values = []
        for r in rows:
            try:
                values.append(float(r.label))
            except ValueError:
                raise LabelsError(path, f"line {r.line}: rank task needs a number, got {r.label!r}") from None
        return Targets(kind, np.asarray(values, dtype=np.float64), ())
    if kind == "binary":
        y = []
        for r in rows:
            v = r.label.lower()
            if v not in _TRUE | _FALSE:
                raise LabelsError(path, f"line {r.line}: binary task needs 0/1 (or true/false), got {r.label!r}")
            y.append(1 if v in _TRUE else 0)
        return Targets(kind, np.asarray(y, dtype=np.int64), ("0", "1"))
    if kind == "multiclass":
        for r in rows:
            if "|" in r.label:
                raise LabelsError(path, f"line {r.line}: multiclass task needs one class, got {r.label!r} (use --task multilabel)")
        classes = tuple(sorted({r.label for r in rows}))
        index = {c: i for i, c in enumerate(classes)}
        return Targets(kind, np.asarray([index[r.label] for r in rows], dtype=np.int64), classes)
    sets = [frozenset(p.strip() for p in r.label.split("|") if p.strip()) for r in rows]
    classes = tuple(sorted(set().union(*sets)))
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(rows), len(classes)), dtype=np.int64)
    for i, s in enumerate(sets):
        y[i, [index[c] for c in s]] = 1
    return Targets(kind, y, classes)
