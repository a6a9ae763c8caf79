"""Timed text: formats x encodings, markup, sidecar discovery, embedded streams, per-shot text."""

from __future__ import annotations

import av
import pytest

from mediafm.errors import SubtitleParseError
from mediafm.media.subtitles import (
    clean_text,
    find_cues,
    find_sidecars,
    parse_subtitle_file,
    read_embedded_cues,
    texts_for_shots,
)
from mediafm.types import Cue, Shot
from mediafm_testing.media import color_shots, write_subtitles, write_video

CUES = [
    Cue(0.5, 1.5, "Café déjà vu, naïve façade"),
    Cue(2.0, 3.25, "Second line {\\i1}in italics{\\i0}\\Nbroken"),
    Cue(3.5, 4.0, "<i>html</i> <b>bold</b> text"),
    Cue(5.0, 6.0, "{\\an8}"),  # markup only: dropped
]
PLAIN = ["Café déjà vu, naïve façade", "Second line in italics broken", "html bold text"]


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass", "ssa"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
def test_every_format_and_encoding_parses_to_the_same_text(tmp_path, fmt, encoding):
    path = write_subtitles(tmp_path / f"t.{fmt}", CUES, encoding=encoding)
    cues = parse_subtitle_file(path)
    assert [c.text for c in cues] == PLAIN
    assert [(c.start_s, c.end_s) for c in cues] == [(0.5, 1.5), (2.0, 3.25), (3.5, 4.0)]
    assert all(c.source == "subtitle" for c in cues)


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("Привет, как дела? Это тест субтитров.", "cp1251"),
        ("Γειά σου κόσμε, τι κάνεις;", "cp1253"),
        ("Dzień dobry, zażółć gęślą jaźń.", "cp1250"),
    ],
)
def test_other_legacy_encodings(tmp_path, text, encoding):
    path = write_subtitles(tmp_path / "x.srt", [Cue(1.0, 2.0, text)], encoding=encoding)
    assert parse_subtitle_file(path)[0].text == text


@pytest.mark.parametrize(
    "raw, plain",
    [
        ("{\\i1}a{\\i0} b", "a b"),
        ("line one\\Nline two", "line one line two"),
        ("<font color=\"#ffff00\">yellow</font>", "yellow"),
        ("<c.yellow>vtt class</c> <00:00:01.500>karaoke", "vtt class karaoke"),
        ("  spaced\n\nout  ", "spaced out"),
        ("a &amp; b", "a & b"),
    ],
)
def test_clean_text(raw, plain):
    assert clean_text(raw) == plain


def test_malformed_files_raise_naming_the_file(tmp_path):
    cases = {
        "garbage.srt": b"this is not a subtitle\nat all\n",
        "binary.ass": bytes(range(256)) * 8,
        "empty.vtt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SubtitleParseError) as err:
            parse_subtitle_file(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(SubtitleParseError, match="missing.srt"):
        parse_subtitle_file(tmp_path / "missing.srt")


def test_find_sidecars_preference(tmp_path):
    names = [
        "movie.mp4", "movie.fr.srt", "movie.en.srt", "movie.srt", "movie.vtt", "movie.eng.forced.vtt",
        "movie.de.ass", "movie.part2.mkv", "movie.part2.srt", "other.srt", "movie.txt",
    ]
    for n in names:
        (tmp_path / n).write_text("x")
    got = [p.name for p in find_sidecars(tmp_path / "movie.mp4")]
    assert got == [
        "movie.srt", "movie.vtt", "movie.en.srt", "movie.eng.forced.vtt", "movie.de.ass", "movie.fr.srt",
    ]
    assert [p.name for p in find_sidecars(tmp_path / "movie.part2.mkv")] == ["movie.part2.srt"]


def test_find_cues_sidecar_then_warning_fallbacks(tmp_path):
    video = write_video(tmp_path / "title.mp4", color_shots([5], 10))
    assert find_cues(video) == ([], "", [])
    (tmp_path / "title.srt").write_bytes(b"\x00\x01garbage that is no subtitle")
    write_subtitles(tmp_path / "title.en.vtt", CUES)
    cues, source, warnings = find_cues(video)
    assert source == "sidecar:title.en.vtt" and [c.text for c in cues] == PLAIN
    assert len(warnings) == 1 and "title.srt" in warnings[0]
    write_subtitles(tmp_path / "title.en.vtt", CUES, encoding="cp1252")
    cues, _, warnings = find_cues(video)
    assert [c.text for c in cues] == PLAIN and any("cp1252" in w for w in warnings)


@pytest.mark.parametrize("ext, codec_hint", [(".mp4", "mov_text"), (".mkv", "subrip"), (".mov", "mov_text")])
def test_embedded_text_streams(tmp_path, ext, codec_hint):
    video = write_video(tmp_path / f"emb{ext}", color_shots([10], 110), subtitles=CUES)
    cues = read_embedded_cues(video)
    assert [c.text for c in cues] == PLAIN
    times = [t for c in cues for t in (c.start_s, c.end_s)]
    assert times == pytest.approx([0.5, 1.5, 2.0, 3.25, 3.5, 4.0], abs=1e-3)
    with av.open(str(video)) as container:
        assert {s.codec_context.name for s in container.streams.subtitles} <= {codec_hint, "srt"}
    cues2, source, warnings = find_cues(video)
    assert cues2 == cues and source.startswith("embedded:stream ") and warnings == []


def test_embedded_without_subtitle_stream(tmp_path):
    video = write_video(tmp_path / "nosub.mkv", color_shots([], 5))
    with pytest.raises(SubtitleParseError, match="nosub.mkv"):
        read_embedded_cues(video)


def test_texts_for_shots_overlap():
    bounds = [(0, 9, 0.0, 1.0), (10, 19, 1.0, 2.0), (20, 49, 2.0, 5.0), (50, 59, 5.0, 6.0)]
    shots = [Shot(i, *b) for i, b in enumerate(bounds)]
    cues = [
        Cue(3.5, 4.0, "c"),  # given out of order on purpose
        Cue(0.5, 1.5, "a"),  # spans shots 0 and 1
        Cue(2.0, 3.25, "b"),
        Cue(4.5, 5.0, "ends exactly at a boundary"),  # touches shot 3 at one instant: no overlap
    ]
    assert texts_for_shots(cues, shots) == ["a", "a", "b c ends exactly at a boundary", ""]
    assert texts_for_shots([], shots) == ["", "", "", ""]


def test_montage_srt(shared_media, montage_truth):
    cues = parse_subtitle_file(shared_media / "montage.srt")
    assert len(cues) == 7
    for cue, sp in zip(cues, montage_truth["speech"]):
        assert cue.text == sp["text"]
        assert cue.start_s == pytest.approx(sp["start_s"], abs=0.01)
        assert cue.end_s == pytest.approx(sp["end_s"], abs=0.01)
    # Shots from the ground-truth pieces: every cue's text lands in each piece it overlaps.
    pieces = montage_truth["pieces"]
    shots = [
        Shot(i, p["start_frame"], p["end_frame"], p["start_frame"] / 25, (p["end_frame"] + 1) / 25)
        for i, p in enumerate(pieces)
    ]
    texts = texts_for_shots(cues, shots)
    for cue in cues:
        for shot, text in zip(shots, texts):
            overlaps = min(shot.end_s, cue.end_s) > max(shot.start_s, cue.start_s)
            assert (cue.text in text) == overlaps
