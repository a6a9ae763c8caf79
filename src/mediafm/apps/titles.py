"""What the applications read about a title from the store: shot times, duration, cues; and the
checks on titles and clips a user names (each failure is one line naming the file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediafm.errors import MediafmError, StoreError
from mediafm.store.catalog import Store
from mediafm.evaluation.clips import Clip
from mediafm.evaluation.labels import LabelsError

log = logging.getLogger(__name__)

# Hand-made labels and clip lists round times; a clip may end this far past the title's end.
END_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Timeline:
    title: str
    starts: np.ndarray  # [n] shot start seconds
    ends: np.ndarray  # [n] shot end seconds
    duration_s: float
    has_text: np.ndarray  # [n] bool: the shot carries subtitle / speech text

    @property
    def n_shots(self) -> int:
        return len(self.starts)


def load_timeline(store: Store, title: str) -> Timeline:
    shots = store.shots(title)
    starts, ends = shots["start_s"].to_numpy(float), shots["end_s"].to_numpy(float)
    text = shots["text"].fillna("").astype(str).str.strip().to_numpy() if "text" in shots else np.array([""] * len(starts))
    return Timeline(title, starts, ends, title_duration(store, title, ends), text != "")


def title_duration(store: Store, title: str, ends: np.ndarray | None = None) -> float:
    row = store.title(title)
    duration = float(row.get("duration_s") or 0.0)
    if duration <= 0:  # rows written without a duration: the last shot's end
        ends = store.shots(title)["end_s"].to_numpy(float) if ends is None else ends
        duration = float(ends[-1]) if len(ends) else 0.0
    return duration


def title_cues(store: Store, title: str) -> np.ndarray | None:
    """[C, 2] (start, end) seconds of the title's subtitle cues, or None when unknown.

    From the store's cue table; for stores ingested before it existed, from the title's subtitle
    source again (sidecar or embedded stream) when the source file is still where it was.
    """
    cues = store.cues(title)
    if cues is None:
        row = store.title(title)
        path = Path(str(row.get("path") or ""))
        if not row.get("subtitle_source") or not path.is_file():
            return None
        from mediafm.media.subtitles import find_cues

        try:
            cues = find_cues(path)[0]
        except MediafmError as exc:  # find_cues reports subtitle problems as warnings; media errors land here
            log.warning("%s: cues not readable (%s)", title, exc)
            return None
    return np.array([(c.start_s, c.end_s) for c in cues], float).reshape(-1, 2)


def resolve_titles(store: Store, titles: list[str] | None) -> list[str]:
    """The titles to work on: those named (each must be in the store), else every encoded title."""
    if not titles:
        out = [t for t in store.title_ids() if store.has_features(t)]
        if not out:
            raise StoreError(store.root, "store has no encoded titles; run `mediafm ingest` and `mediafm encode`")
        return out
    missing = [t for t in titles if not store.has_title(t)]
    if missing:
        raise StoreError(store.root, f"not in the store: {_names(missing)}")
    return list(dict.fromkeys(titles))


def check_clips(store: Store, clips: list[Clip], source: str | Path | None, lines: list[int] | None = None) -> None:
    """Every clip names a title in the store and lies inside it; LabelsError names the first that does not."""
    missing = sorted({c.title for c in clips if not store.has_title(c.title)})
    if missing:
        raise LabelsError(source, f"{sum(c.title in missing for c in clips)} clips name titles not in the store "
                          f"{store.root}: {_names(missing)}")
    durations: dict[str, float] = {}
    for i, c in enumerate(clips):
        if c.title not in durations:
            durations[c.title] = title_duration(store, c.title)
        d = durations[c.title]
        if c.start >= d or c.end > d + END_TOLERANCE_S:
            where = f"line {lines[i]}: " if lines else ""
            raise LabelsError(source, f"{where}clip {c.start:g}-{c.end:g} s is outside title {c.title!r} "
                              f"(duration {d:.2f} s)")


def _names(items: list[str], shown: int = 3) -> str:
    head = ", ".join(repr(t) for t in items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")
