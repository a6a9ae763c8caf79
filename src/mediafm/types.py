"""Typed records passed between stages. Dicts exist only at the JSON/CLI edge.

Time is exact: seconds are derived from PTS * time_base (a Fraction), never frame_index / fps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction

# The three input modalities, in the order fused vectors concatenate them.
MODALITIES = ("video", "audio", "text")


@dataclass(frozen=True)
class Shot:
    """A shot: frames [start_frame, end_frame] inclusive; time [start_s, end_s) in seconds.

    Audio-only titles have start_frame = end_frame = -1.
    """

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Cue:
    """One timed-text cue, markup stripped. `source` is 'subtitle' or 'asr'."""

    start_s: float
    end_s: float
    text: str
    source: str = "subtitle"


@dataclass
class TitleMeta:
    """Title metadata from the optional NAME.json sidecar; feeds the model's [GLOBAL] token."""

    title: str = ""
    synopsis: str = ""
    tags: list[str] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.synopsis or self.tags or self.genres)

    def text(self) -> str:
        """The text embedded for the [GLOBAL] token."""
        parts = [self.title, self.synopsis]
        if self.genres:
            parts.append("Genres: " + ", ".join(self.genres))
        if self.tags:
            parts.append("Tags: " + ", ".join(self.tags))
        return ". ".join(p for p in parts if p)


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learnt about a file's streams."""

    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rotation: int = 0  # degrees clockwise applied on display
    avg_rate: Fraction | None = None  # nominal frame rate (informational only)
    time_base: Fraction | None = None
    video_codec: str = ""
    audio_codec: str = ""
    subtitle_streams: tuple[int, ...] = ()
