"""`IngestConfig`: the one source of defaults for ingestion (the CLI takes its defaults from here)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from mediafm.errors import ConfigError
from mediafm.store.catalog import AUDIO_RATE

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".mov", ".ogv", ".m4v",
                    ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma")


@dataclass(frozen=True)
class IngestConfig:
    """How titles are turned into shots and per-shot media.

    Sidecars (NAME.srt, NAME.json, ...) are never titles: only `extensions` count as media.
    """

    detector: str = "transnetv2"  # shot detector registry name (`mediafm.shots.get_detector`)
    frames_per_shot: int = 3  # K frames sampled per shot, at the centres of K equal parts
    frame_side: int = 224  # sampled frames: short side resized to this, then centre-cropped square
    audio_rate: int = AUDIO_RATE  # Hz, mono int16 in media/<tid>/audio.npy
    audio_window_s: float = 10.0  # audio-only titles: shot length when no better segmentation runs
    subtitles: bool = True  # attach sidecar/embedded subtitle text to shots
    keep_audio: bool = True  # write media/<tid>/audio.npy (the audio encoder reads it)
    # Frame sampling (see ingest.worker.FrameSampler): the last `recent_frames` frames are kept at
    # full rate (None: the detector's look-ahead + 129), up to `recent_bytes` of them as decoded
    # frames and the rest as squares, plus at most `sample_capacity` older squares per open
    # shot, halving their density when full: memory is bounded however long a shot or title is.
    recent_frames: int | None = None
    recent_bytes: int = 256 << 20
    sample_capacity: int = 24
    # Where the shot detector and (when ingest encodes) the encoders run: auto | cpu | cuda | cuda:N
    # (mediafm.devices). Decoding and frame scaling stay on the CPU.
    device: str = "auto"
    # Decode with the codec's in-loop deblocking filter. Off, decoding costs 10-20% less CPU at
    # 480p-4K and the picked frames move slightly (the filter is in the loop, so the difference
    # drifts until the next keyframe): `benchmarks/ingest.py --ladder --parts` prints both.
    loop_filter: bool = True
    extensions: tuple[str, ...] = field(default=VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)

    def __post_init__(self) -> None:
        if self.frames_per_shot < 1:
            raise ConfigError(None, f"frames_per_shot must be >= 1, got {self.frames_per_shot}")
        if self.frame_side < 16:
            raise ConfigError(None, f"frame_side must be >= 16, got {self.frame_side}")
        if self.audio_window_s <= 0:
            raise ConfigError(None, f"audio_window_s must be > 0, got {self.audio_window_s}")
        bad_recent = self.recent_frames is not None and self.recent_frames < 1
        if bad_recent or self.sample_capacity < 2 * self.frames_per_shot:
            raise ConfigError(None, "recent_frames must be >= 1 and sample_capacity >= 2 * frames_per_shot")
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in self.extensions)
        object.__setattr__(self, "extensions", exts)

    def with_overrides(self, **values) -> IngestConfig:
        """A copy with the non-None values replaced (CLI flags left unset keep the defaults)."""
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(None, f"unknown ingest settings {sorted(unknown)}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> IngestConfig:
        values = dict(values)
        if "extensions" in values:
            values["extensions"] = tuple(values["extensions"])
        return cls().with_overrides(**values)
