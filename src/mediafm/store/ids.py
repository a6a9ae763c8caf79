"""Title ids: what ingestion names a title, and what every reader (the explorer's URLs, labels
CSVs, file names in the store) accepts. Both sides use this module, so they agree by construction.

An id is the file stem with anything but letters, decimal digits, `.`, `_` and `-` turned into
`_`. Letters of every script are kept (`Amélie`, `東京物語`), NFC-normalised so that the same
name typed on macOS (decomposed) and Linux (composed) gives the same id. Ids never start with
`.` (hidden files), `-` (would read as a command-line option) or `_`, and stay within 120
characters and 180 UTF-8 bytes (file-system names are limited to 255 bytes, and the store adds
prefixes and suffixes such as `.ID.parquet.XXXXXXXXXXXX.tmp`).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

MAX_CHARS = 120
MAX_BYTES = 180
# For the explorer's OpenAPI schema and request validation: a superset of `is_title_id` that
# regex engines agree on (`\w` also admits a few marks and connector punctuation; the validator
# below makes the check exact).
TITLE_ID_PATTERN = rf"^[^\W_][\w.-]{{0,{MAX_CHARS - 1}}}$"

_PUNCT = frozenset("._-")
_LEADING = frozenset("._-")
# Unicode letter categories and decimal digits: what every regex flavour calls a word character.
_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})


def _is_word(ch: str) -> bool:
    return unicodedata.category(ch) in _WORD_CATEGORIES


def title_id_for(path: str | Path) -> str:
    """The id of the title stored from `path`: its stem, made safe (see the module docstring)."""
    stem = unicodedata.normalize("NFC", Path(path).stem)
    out: list[str] = []
    for ch in stem:
        if _is_word(ch) or ch in _PUNCT:
            out.append(ch)
        elif not out or out[-1] != "_":  # a run of unsafe characters becomes one underscore
            out.append("_")
    safe = "".join(out).strip("._-")
    safe = _truncate(safe).rstrip("._-")
    return safe or "title"


def with_suffix(title_id: str, tag: str) -> str:
    """`title_id-tag` (tag: ASCII letters/digits), shortening the id so the result stays an id."""
    room = len(tag) + 1
    base = _truncate(title_id, MAX_CHARS - room, MAX_BYTES - room).rstrip("._-") or "title"
    return f"{base}-{tag}"


def _truncate(text: str, chars: int = MAX_CHARS, nbytes: int = MAX_BYTES) -> str:
    text = text[:chars]
    while len(text.encode("utf-8")) > nbytes:
        text = text[:-1]
    return text


def is_title_id(value: str) -> bool:
    """True for every id `title_id_for` can produce (and hash-suffixed variants of them)."""
    if not value or len(value) > MAX_CHARS or len(value.encode("utf-8")) > MAX_BYTES:
        return False
    if value[0] in _LEADING or unicodedata.normalize("NFC", value) != value:
        return False
    return all(_is_word(ch) or ch in _PUNCT for ch in value)
