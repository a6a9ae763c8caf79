"""One search result, the same for vector and text search and for the explorer's API."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Hit:
    """One search result: a shot of a title, its time span and its score (cosine-based)."""

    title_id: str
    shot_index: int
    start_s: float
    end_s: float
    score: float
    text: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
