"""Title metadata sidecars (NAME.json)."""

from __future__ import annotations

import json

import pytest

from mediafm.errors import MetadataError
from mediafm.media.metadata import load_metadata, parse_metadata
from mediafm.types import TitleMeta


def test_no_sidecar_is_empty_without_warning(tmp_path):
    assert load_metadata(tmp_path / "film.mp4") == (TitleMeta(), [])


def test_full_sidecar(tmp_path):
    doc = {"title": " Film ", "synopsis": "A story.", "tags": ["rain", " night "], "genres": "drama", "x": 1}
    (tmp_path / "film.json").write_text(json.dumps(doc))
    meta, warnings = load_metadata(tmp_path / "film.mp4")
    assert warnings == []
    assert meta == TitleMeta(title="Film", synopsis="A story.", tags=["rain", "night"], genres=["drama"])
    assert meta.text() == "Film. A story.. Genres: drama. Tags: rain, night"


def test_utf8_bom_and_nulls(tmp_path):
    (tmp_path / "f.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"title": "Été", "tags": None}).encode())
    assert load_metadata(tmp_path / "f.mkv")[0] == TitleMeta(title="Été")


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"title": 3}', "'title' must be a string"),
        ('{"tags": [1, "a"]}', "'tags' must be a list of strings"),
        ('{"genres": {"a": 1}}', "'genres' must be a list of strings"),
    ],
)
def test_malformed_gives_empty_meta_and_warning(tmp_path, content, problem):
    (tmp_path / "bad.json").write_text(content)
    meta, warnings = load_metadata(tmp_path / "bad.mp4")
    assert meta == TitleMeta() and len(warnings) == 1
    assert "bad.json" in warnings[0] and problem in warnings[0]
    with pytest.raises(MetadataError, match=problem):
        parse_metadata(tmp_path / "bad.json")


def test_not_utf8(tmp_path):
    (tmp_path / "x.json").write_bytes('{"title": "café"}'.encode("utf-16"))
    meta, warnings = load_metadata(tmp_path / "x.mp4")
    assert meta.is_empty and "x.json" in warnings[0]
