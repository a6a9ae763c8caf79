"""Timed text: sidecar subtitle files and embedded text subtitle streams, as markup-free cues.

Sidecars: `NAME.srt|.vtt|.ass|.ssa` next to `NAME.mp4`, and `NAME.LANG[.more].ext`; preference is
the exact `NAME.ext`, then English, then any other. Files are parsed with pysubs2 after
decoding the bytes: BOM first, then strict UTF-8, then charset-normalizer's best guess.
Embedded streams (mov_text, subrip, webvtt, ass) are decoded with PyAV.

Cue times are seconds on the title's time line (0 = first video frame, as `Frame.pts_s`).
"""

from __future__ import annotations

import bisect
import codecs
import re
from collections.abc import Sequence
from pathlib import Path

import av
import charset_normalizer
import pysubs2

from mediafm.errors import MediafmError, SubtitleParseError
from mediafm.media.decode import TEXT_SUBTITLE_CODECS, _reason, first_video_pts_s, open_container
from mediafm.types import Cue, Shot

SUBTITLE_EXTS = (".srt", ".vtt", ".ass", ".ssa")
_FORMATS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}
_ENGLISH = {"en", "eng", "english"}
MEDIA_EXTS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .ts .m2ts .mts .ogv .mpg .mpeg .wmv .flv "
    ".wav .flac .mp3 .m4a .ogg .opus .aac".split()
)
# Embedded cues without a duration last until the next cue, at most this long (seconds).
_MAX_OPEN_CUE_S = 5.0

# How much more "chaos" (charset-normalizer's mess score, 0..1) cp1252 may show and still win.
_CP1252_CHAOS_TIE = 0.1
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_ASS_TAG = re.compile(r"\{[^}]*\}")  # {\i1}, {\pos(1,2)}, also {comments}
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")  # <i>, </font>, <font color="#fff">, <c.yellow>
_VTT_TIMESTAMP = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?\.\d{3}>")  # WebVTT karaoke timestamps
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    r"""Plain text of a cue: ASS override tags and HTML/WebVTT tags removed, `\N`/`\n`/newlines
    turned into single spaces, `\h` (hard space) into a space."""
    t = _ASS_TAG.sub("", text)
    t = t.replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    t = _VTT_TIMESTAMP.sub("", t)
    t = _HTML_TAG.sub("", t)
    t = t.replace("&nbsp;", " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return _SPACES.sub(" ", t).strip()


# ---------------------------------------------------------------------------------------------
# Sidecar files


def find_sidecars(video_path: str | Path) -> list[Path]:
    """Subtitle files that belong to `video_path`, most preferred first.

    Order: exact `NAME.ext` (srt, vtt, ass, ssa), then `NAME.LANG...ext` with an English LANG,
    then the rest by name. A file named after another media file in the folder (for
    `a.mp4`, `a.part2.srt` when `a.part2.mkv` exists) belongs to that file and is skipped.
    """
    video = Path(video_path)
    folder = video.parent if str(video.parent) else Path(".")
    stem = video.stem
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    other_stems = {e.stem.lower() for e in entries if e.suffix.lower() in MEDIA_EXTS and e != video}
    exact: list[Path] = []
    english: list[Path] = []
    others: list[Path] = []
    for e in entries:
        ext = e.suffix.lower()
        if ext not in SUBTITLE_EXTS or not e.is_file():
            continue
        sub_stem = e.name[: -len(e.suffix)]
        if sub_stem == stem:
            exact.append(e)
        elif sub_stem.lower().startswith(stem.lower() + ".") and sub_stem.lower() not in other_stems:
            if any(sub_stem.lower().startswith(s + ".") or sub_stem.lower() == s for s in other_stems
                   if len(s) > len(stem)):
                continue
            lang = sub_stem[len(stem) + 1 :].split(".")[0].lower()
            is_english = lang in _ENGLISH or lang.startswith(("en-", "en_"))
            (english if is_english else others).append(e)
    ext_rank = {x: i for i, x in enumerate(SUBTITLE_EXTS)}
    exact.sort(key=lambda p: ext_rank[p.suffix.lower()])
    english.sort(key=lambda p: (ext_rank[p.suffix.lower()], p.name))
    others.sort(key=lambda p: p.name)
    return exact + english + others


def decode_bytes(data: bytes, path: str | Path) -> tuple[str, str]:
    """Decode subtitle bytes: (text, encoding used). BOM, then strict UTF-8, then detection."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError as e:
                problem = f"invalid {enc} text after its byte-order mark ({e.reason})"
                raise SubtitleParseError(path, problem) from e
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        raise SubtitleParseError(path, "text encoding could not be detected (binary or corrupt file?)")
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    # On short Western text charset-normalizer often ranks a Baltic/Central-European sibling
    # (cp1257, cp1250) a hair above cp1252 and garbles accents. cp1252 is by far the most
    # common legacy subtitle encoding, so it wins near-ties; a clearly better guess still wins.
    for m in matches:
        if (m.encoding == "cp1252" or "cp1252" in m.could_be_from_charset) and (
            m.chaos <= best.chaos + _CP1252_CHAOS_TIE and m.coherence >= best.coherence - 0.05
        ):
            return data.decode("cp1252", errors="replace"), "cp1252"
    return str(best), best.encoding


def parse_subtitle_file(path: str | Path) -> list[Cue]:
    """Parse a .srt/.vtt/.ass/.ssa file into cues (markup stripped, empty cues dropped, sorted).

    Raises:
        SubtitleParseError: unreadable, empty, undecodable or malformed file (names the file).
    """
    cues, _ = parse_subtitle_file_with_encoding(path)
    return cues


def parse_subtitle_file_with_encoding(path: str | Path) -> tuple[list[Cue], str]:
    """Like parse_subtitle_file, also returning the text encoding that was used."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SubtitleParseError(p, f"cannot read subtitle file ({e.strerror or e})") from e
    if not data.strip():
        raise SubtitleParseError(p, "subtitle file is empty")
    text, encoding = decode_bytes(data, p)
    fmt = _FORMATS.get(p.suffix.lower())
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except (pysubs2.Pysubs2Error, ValueError, KeyError, IndexError) as e:
        raise SubtitleParseError(p, f"malformed {fmt or 'subtitle'} file ({e})") from e
    cues = []
    for ev in subs:
        if ev.is_comment or ev.end <= ev.start:
            continue
        t = clean_text(ev.text)
        if t:
            cues.append(Cue(ev.start / 1000.0, ev.end / 1000.0, t))
    if not cues:
        raise SubtitleParseError(p, f"no subtitle cues found (malformed {fmt or 'subtitle'} file?)")
    cues.sort(key=lambda c: (c.start_s, c.end_s))
    return cues, encoding


# ---------------------------------------------------------------------------------------------
# Embedded streams


def read_embedded_cues(path: str | Path, stream_index: int | None = None) -> list[Cue]:
    """Cues from an embedded text subtitle stream (the first text one unless `stream_index`).

    Raises:
        SubtitleParseError: no text subtitle stream, or it cannot be decoded.
        MediaDecodeError: the file itself cannot be opened.
    """
    p = Path(path)
    origin = first_video_pts_s(p) or 0.0
    with open_container(p) as container:
        streams = [s for s in container.streams.subtitles if s.codec_context.name in TEXT_SUBTITLE_CODECS]
        if stream_index is not None:
            streams = [s for s in streams if s.index == stream_index]
        if not streams:
            raise SubtitleParseError(p, "no embedded text subtitle stream")
        stream = streams[0]
        raw: list[tuple[float, float | None, str]] = []
        try:
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue  # flush packets and mov_text's empty gap samples
                start = float(packet.pts * packet.time_base) - origin
                end = start + float(packet.duration * packet.time_base) if packet.duration else None
                for sub in packet.decode():
                    text = _subtitle_text(sub)
                    if text:
                        raw.append((start, end, text))
        except av.FFmpegError as e:
            problem = f"embedded subtitle stream {stream.index} is corrupt ({_reason(e)})"
            raise SubtitleParseError(p, problem) from e
    raw.sort(key=lambda r: r[0])
    cues = []
    for i, (start, end, text) in enumerate(raw):
        if end is None:
            nxt = raw[i + 1][0] if i + 1 < len(raw) else start + _MAX_OPEN_CUE_S
            end = min(nxt, start + _MAX_OPEN_CUE_S)
        if end > start:
            cues.append(Cue(start, end, text))
    return cues


def _subtitle_text(sub) -> str:
    """Plain text of one decoded PyAV subtitle (FFmpeg gives text codecs to us as ASS)."""
    dialogue = getattr(sub, "dialogue", None)
    if dialogue is None:
        return ""  # bitmap subtitle
    raw = dialogue.decode("utf-8", errors="replace") if isinstance(dialogue, bytes) else str(dialogue)
    return clean_text(raw)


def embedded_text_streams(path: str | Path) -> list[tuple[int, str]]:
    """(stream index, language) of every embedded text subtitle stream, English first."""
    with open_container(path) as container:
        found = [
            (s.index, (s.language or s.metadata.get("language") or "").lower())
            for s in container.streams.subtitles
            if s.codec_context.name in TEXT_SUBTITLE_CODECS
        ]
    return sorted(found, key=lambda x: (x[1] not in _ENGLISH, x[0]))


# ---------------------------------------------------------------------------------------------
# Per title


def find_cues(video_path: str | Path) -> tuple[list[Cue], str, list[str]]:
    """The title's timed text: (cues, source, warnings). Never raises for subtitle problems.

    Tries sidecar files in preference order, then embedded text streams (English first); the
    first source that yields cues wins. A malformed or undecodable source becomes a warning and
    the next one is tried. `source` is "sidecar:NAME.srt", "embedded:stream N" or "".
    """
    warnings: list[str] = []
    for side in find_sidecars(video_path):
        try:
            cues, encoding = parse_subtitle_file_with_encoding(side)
        except SubtitleParseError as e:
            warnings.append(str(e))
            continue
        if encoding not in ("utf-8", "utf-8-sig", "ascii"):
            # Not an error, but worth knowing when text looks wrong.
            warnings.append(f"{side}: subtitle text decoded as {encoding} (not UTF-8)")
        return cues, f"sidecar:{side.name}", warnings
    try:
        streams = embedded_text_streams(video_path)
    except MediafmError as e:
        warnings.append(str(e))
        return [], "", warnings
    for index, _lang in streams:
        try:
            cues = read_embedded_cues(video_path, index)
        except MediafmError as e:
            warnings.append(str(e))
            continue
        if cues:
            return cues, f"embedded:stream {index}", warnings
    return [], "", warnings


def texts_for_shots(cues: Sequence[Cue], shots: Sequence[Shot]) -> list[str]:
    """Per shot, the text of every cue overlapping it (overlap > 0), joined in time order.

    Shots must be sorted by start (they tile the title); cues may be in any order. A cue that
    spans several shots gives its text to each of them.
    """
    starts = [s.start_s for s in shots]
    parts: list[list[str]] = [[] for _ in shots]
    for cue in sorted(cues, key=lambda c: (c.start_s, c.end_s)):
        # First shot whose end is after the cue start: step back from the last start <= cue start.
        i = max(0, bisect.bisect_right(starts, cue.start_s) - 1)
        while i < len(shots) and shots[i].start_s < cue.end_s:
            if min(shots[i].end_s, cue.end_s) - max(shots[i].start_s, cue.start_s) > 0:
                parts[i].append(cue.text)
            i += 1
    return [" ".join(p) for p in parts]
