"""Typed records passed between stages. Dicts exist only at the JSON/CLI edge.

Time is exact: seconds are derived from PTS * time_base (a Fraction), never frame_index / fps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction

# The three input modalities, in the order fused vectors concatenate them.
MODALITIES = ("video", "audio", "text")
# The fused vector's blocks, in order: the modalities' embeddings, then the film descriptors
# (mediafm.encoders.descriptors) where a store was encoded with them.
DESCRIPTORS = "descriptors"
FUSED_BLOCKS = (*MODALITIES, DESCRIPTORS)


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


@dataclass(frozen=True)
class TitleRecord:
    """A title's row in STORE/titles/<title_id>.parquet: one field per column, in column order.

    The row is written last when a title is committed, so its presence means the title is done
    (`Store.write_title`). Defaults are what a title without that stream or sidecar gets.
    """

    title_id: str  # the store's id of the title (store.ids.title_id_for)
    path: str  # the source file as it was ingested
    source_key: str  # identity of that file's version (path + size + mtime): what resume compares
    duration_s: float = 0.0  # seconds, the end of the last shot
    has_video: bool = False
    has_audio: bool = False  # False also when the audio stream was unreadable or not kept
    width: int = 0  # decoded frame size in pixels; 0 without video
    height: int = 0
    rotation: int = 0  # degrees clockwise applied on display
    n_frames: int = 0  # decoded video frames; 0 without video
    n_shots: int = 0
    detector: str = ""  # the shot detector (video) or audio segmenter that cut the shots
    subtitle_source: str = ""  # where the shots' text came from ("sidecar:NAME.srt", a stream...); "" none
    meta_json: str = ""  # the NAME.json sidecar as a TitleMeta JSON object; "" none
    warnings_json: str = "[]"  # JSON list of the non-fatal problems ingest met
    ingested_at: float | None = None  # Unix seconds of the commit; None until Store.write_title stamps it
    subtitle_encoding: str = ""  # text encoding the subtitles were decoded from; "" none or unknown

    @classmethod
    def from_row(cls, row: dict) -> TitleRecord:
        """The record of a row read back from the store (`Store.title`). Rows written before a
        column existed lack it, and fixtures may have left columns null: those take the default."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if row.get(f.name) is not None})

    def to_row(self) -> dict:
        """The row as the title table stores it (column name -> value, in column order)."""
        return asdict(self)
