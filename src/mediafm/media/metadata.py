"""Title metadata from an optional `NAME.json` sidecar (feeds the model's [GLOBAL] token).

    {"title": "...", "synopsis": "...", "tags": ["..."], "genres": ["..."]}

All keys are optional; unknown keys are ignored. A malformed file never stops ingestion: it gives
an empty TitleMeta and a warning naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from mediafm.errors import MetadataError
from mediafm.types import TitleMeta

_TEXT_KEYS = ("title", "synopsis")
_LIST_KEYS = ("tags", "genres")


def sidecar_path(video_path: str | Path) -> Path:
    """`NAME.json` next to `NAME.ext`."""
    return Path(video_path).with_suffix(".json")


def parse_metadata(path: str | Path) -> TitleMeta:
    """Parse a metadata JSON file strictly.

    Raises:
        MetadataError: unreadable file, invalid JSON, not an object, or a value of the wrong type
        (`title`/`synopsis` must be strings; `tags`/`genres` lists of strings, or one string).
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_bytes().decode("utf-8-sig"))
    except OSError as e:
        raise MetadataError(p, f"cannot read metadata file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise MetadataError(p, f"metadata file is not UTF-8 ({e.reason})") from e
    except json.JSONDecodeError as e:
        raise MetadataError(p, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    if not isinstance(raw, dict):
        raise MetadataError(p, f"expected a JSON object, got {type(raw).__name__}")
    fields: dict = {}
    for key in _TEXT_KEYS:
        value = raw.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise MetadataError(p, f"'{key}' must be a string, got {type(value).__name__}")
        fields[key] = value.strip()
    for key in _LIST_KEYS:
        value = raw.get(key, [])
        if value is None:
            value = []
        if isinstance(value, str):
            value = [value]  # a single tag written without brackets is unambiguous
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MetadataError(p, f"'{key}' must be a list of strings")
        fields[key] = [v.strip() for v in value if v.strip()]
    return TitleMeta(**fields)


def load_metadata(video_path: str | Path) -> tuple[TitleMeta, list[str]]:
    """Metadata for a title from its optional sidecar: (meta, warnings).

    No sidecar gives an empty TitleMeta and no warning; a malformed one gives an empty TitleMeta
    and a warning naming the file.
    """
    p = sidecar_path(video_path)
    if not p.exists():
        return TitleMeta(), []
    try:
        return parse_metadata(p), []
    except MetadataError as e:
        return TitleMeta(), [str(e)]
