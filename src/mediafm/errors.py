"""Typed errors. Every error names the file it is about; only batch executors catch per item."""

from __future__ import annotations

from pathlib import Path


class MediafmError(Exception):
    """Base class: `path` is the file concerned (or None), `problem` a one-line reason."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class MediaDecodeError(MediafmError):
    """The file cannot be opened or decoded as media (zero-byte, truncated, not media...)."""


class MissingStreamError(MediaDecodeError):
    """The file has no stream of the kind that was asked for."""


class SubtitleParseError(MediafmError):
    """A subtitle file or stream cannot be parsed or decoded."""


class MetadataError(MediafmError):
    """A title metadata sidecar (NAME.json) is malformed."""


class StoreError(MediafmError):
    """The catalog store is missing, corrupt, or mixes incompatible encoders/models."""


class StoreLockedError(StoreError):
    """Another process is writing the store (it holds the store's writer lock)."""


class ConfigError(MediafmError, ValueError):
    """A configuration value is invalid."""


class ModelUnavailableError(MediafmError):
    """A model's (encoder's, shot detector's) weights or runtime are not installed."""


def failure_reason(exc: BaseException) -> str:
    """One line for a failure record: a mediafm error's problem (without the path), else the message."""
    return getattr(exc, "problem", None) or str(exc) or type(exc).__name__
