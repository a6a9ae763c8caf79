"""Timed text: sidecar subtitle files and embedded text subtitle streams, as markup-free cues.

Sidecars: `NAME.srt|.vtt|.ass|.ssa` next to `NAME.mp4`, and `NAME.LANG[.more].ext`; preference is
the exact `NAME.ext`, then English, then any other. Files are parsed with pysubs2 after
decoding the bytes: BOM first, then strict UTF-8, then Windows-1252 (Western European) unless
charset-normalizer finds a clearly better-fitting code page. Cues whose timestamps are broken,
negative or reversed are dropped and reported with their line numbers (pysubs2 alone would glue
a broken cue's text onto the cue before it, and read `-00:00:05,000` as 5 s).
Embedded streams (mov_text, subrip, webvtt, ass) are decoded with PyAV.

Cue times are seconds on the title's time line (0 = first video frame, as `Frame.pts_s`).
"""

from __future__ import annotations

import bisect
import codecs
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import charset_normalizer
import pysubs2
from charset_normalizer.cd import coherence_ratio
from charset_normalizer.md import mess_ratio

from mediafm.errors import MediafmError, SubtitleParseError
from mediafm.media.decode import TEXT_SUBTITLE_CODECS, _reason, first_video_pts_s, open_container
from mediafm.types import Cue, Shot

log = logging.getLogger(__name__)

SUBTITLE_EXTS = (".srt", ".vtt", ".ass", ".ssa")
_FORMATS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}
_ENGLISH = {"en", "eng", "english"}
MEDIA_EXTS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .ts .m2ts .mts .ogv .mpg .mpeg .wmv .flv "
    ".wav .flac .mp3 .m4a .ogg .opus .aac".split()
)
# Embedded cues without a duration last until the next cue, at most this long (seconds).
_MAX_OPEN_CUE_S = 5.0

# Legacy (non-UTF-8) files are read as Windows-1252, the most common legacy subtitle encoding,
# unless charset-normalizer's best guess is clearly better: less "chaos" (its mess score, 0..1) by
# more than this, or more language coherence by more than _COHERENCE_MARGIN. On short Western
# text it often ranks an exotic sibling (cp775, cp1257, mac_latin2) first and garbles accents
# ("café" -> "cafķ"); text of another script read as cp1252 scores a mess near 1 and loses.
_CP1252_CHAOS_TIE = 0.1
_COHERENCE_MARGIN = 0.1
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
    """Decode subtitle bytes: (text, encoding used). BOM, strict UTF-8, then cp1252 or detection."""
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
    western = _western(data)
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        if western is not None:
            return western
        raise SubtitleParseError(path, "text encoding could not be detected (binary or corrupt file?)")
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    if western is not None:
        text, _ = western
        chaos = mess_ratio(text)
        coherence = max((r for _, r in coherence_ratio(text)), default=0.0)
        if chaos <= best.chaos + _CP1252_CHAOS_TIE and best.coherence <= coherence + _COHERENCE_MARGIN:
            return western
    return str(best), best.encoding


def _western(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) as Windows-1252, or as Latin-1 for the five bytes cp1252 leaves undefined."""
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        pass
    text = data.decode("latin-1")  # never fails; C1 control characters make its mess score high
    return (text, "latin-1") if mess_ratio(text) < 0.5 else None


# ---------------------------------------------------------------------------------------------
# Cue timing checks: before pysubs2, which forgives too much


@dataclass(frozen=True)
class DroppedCue:
    """A cue left out of a subtitle file: 1-based line of its timing and why."""

    line: int
    reason: str


@dataclass
class SubtitleFile:
    """A parsed subtitle file: its cues, the text encoding used, and the cues it had to drop."""

    cues: list[Cue]
    encoding: str
    dropped: list[DroppedCue] = field(default_factory=list)

    def dropped_warning(self, path: str | Path) -> str:
        """One line naming the file, the count and the lines of the dropped cues ("" if none)."""
        if not self.dropped:
            return ""
        shown = ", ".join(f"{d.line} ({d.reason})" for d in self.dropped[:10])
        more = f" and {len(self.dropped) - 10} more" if len(self.dropped) > 10 else ""
        return (f"{path}: dropped {len(self.dropped)} cue(s) with broken timing, at line(s) {shown}{more}")


_SRT_TS = r"\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}"
_VTT_TS = r"(?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3}"
_TIMING = {
    "srt": re.compile(rf"^\s*(?P<a>{_SRT_TS})\s*-->\s*(?P<b>{_SRT_TS})(?:\s.*)?$"),
    "vtt": re.compile(rf"^\s*(?P<a>{_VTT_TS})\s*-->\s*(?P<b>{_VTT_TS})(?:\s.*)?$"),
}
_VTT_NON_CUES = ("NOTE", "STYLE", "REGION")
_ASS_TS = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}(?:\.\d{1,3})?\s*$")


def _seconds(ts: str) -> float:
    parts = re.split(r"[:.,]", ts.strip())
    *hms, frac = parts if len(parts) >= 3 and ("." in ts or "," in ts) else (*parts, "0")
    value = 0.0
    for p in hms:
        value = value * 60 + int(p)
    return value + int(frac) / 10 ** len(frac)


def _bad_timing(line: str, pattern: re.Pattern) -> str:
    """Why a timing line is unusable, or "" if it is fine."""
    m = pattern.match(line)
    if m is None:
        return "negative timestamp" if re.match(r"^\s*-\s*\d", line) or "--> -" in line else "unreadable timestamp"
    if _seconds(m["b"]) <= _seconds(m["a"]):
        return "ends before it starts"
    return ""


def _drop_bad_cues(text: str, fmt: str | None) -> tuple[str, list[DroppedCue]]:
    """Remove cues whose timing is broken, negative or reversed; (remaining text, what went)."""
    if fmt in _TIMING:
        return _drop_bad_blocks(text, _TIMING[fmt])
    if fmt in ("ass", "ssa"):
        return _drop_bad_dialogues(text)
    return text, []


def _drop_bad_blocks(text: str, pattern: re.Pattern) -> tuple[str, list[DroppedCue]]:
    """SRT/WebVTT: blank-line separated blocks; a block whose `-->` line is bad goes whole
    (its counter line included, which pysubs2 would otherwise take as text)."""
    lines = text.splitlines()
    keep: list[str] = []
    dropped: list[DroppedCue] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j].strip():
            j += 1
        block = range(i, j)  # lines[i:j] is one block; j is blank or the end
        timing = next((k for k in block if "-->" in lines[k]), None)
        reason = _bad_timing(lines[timing], pattern) if timing is not None else ""
        if reason:
            dropped.append(DroppedCue(timing + 1, reason))
        elif timing is not None or not lines[i].lstrip().startswith(_VTT_NON_CUES):
            keep.extend(lines[i:j])  # WebVTT comment/style blocks go: pysubs2 would take them as text
        keep.extend(lines[j:j + 1])
        i = j + 1
    return "\n".join(keep) + "\n", dropped


def _drop_bad_dialogues(text: str) -> tuple[str, list[DroppedCue]]:
    """ASS/SSA: one `Dialogue:` line per cue; its Start and End fields come from the Format line."""
    keep: list[str] = []
    dropped: list[DroppedCue] = []
    start_i, end_i = 1, 2
    for n, line in enumerate(text.splitlines(), 1):
        head, _, rest = line.partition(":")
        key = head.strip().lower()
        if key == "format":
            names = [f.strip().lower() for f in rest.split(",")]
            if "start" in names and "end" in names:
                start_i, end_i = names.index("start"), names.index("end")
        elif key == "dialogue":
            fields = rest.split(",")
            reason = ""
            if len(fields) <= max(start_i, end_i):
                reason = "unreadable timestamp"
            else:
                a, b = fields[start_i], fields[end_i]
                if a.strip().startswith("-") or b.strip().startswith("-"):
                    reason = "negative timestamp"
                elif not (_ASS_TS.match(a) and _ASS_TS.match(b)):
                    reason = "unreadable timestamp"
                elif _seconds(b) <= _seconds(a):
                    reason = "ends before it starts"
            if reason:
                dropped.append(DroppedCue(n, reason))
                continue
        keep.append(line)
    return "\n".join(keep) + "\n", dropped


def parse_subtitle_file(path: str | Path) -> list[Cue]:
    """Parse a .srt/.vtt/.ass/.ssa file into cues (markup stripped, empty cues dropped, sorted).

    Cues with broken, negative or reversed timestamps are left out with a logged warning that
    names the file and their lines (`read_subtitle_file` returns them instead).

    Raises:
        SubtitleParseError: unreadable, empty, undecodable or malformed file (names the file).
    """
    sub = read_subtitle_file(path)
    if sub.dropped:
        log.warning("%s", sub.dropped_warning(path))
    return sub.cues


def read_subtitle_file(path: str | Path) -> SubtitleFile:
    """Like parse_subtitle_file, also returning the text encoding used and the dropped cues."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SubtitleParseError(p, f"cannot read subtitle file ({e.strerror or e})") from e
    if not data.strip():
        raise SubtitleParseError(p, "subtitle file is empty")
    text, encoding = decode_bytes(data, p)
    fmt = _FORMATS.get(p.suffix.lower())
    text, dropped = _drop_bad_cues(text, fmt)
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
        what = f"no usable subtitle cues ({len(dropped)} with broken timing)" if dropped else "no subtitle cues found"
        raise SubtitleParseError(p, f"{what} (malformed {fmt or 'subtitle'} file?)")
    cues.sort(key=lambda c: (c.start_s, c.end_s))
    return SubtitleFile(cues, encoding, dropped)


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


@dataclass
class FoundSubtitles:
    """A title's timed text: cues, where they came from ("sidecar:NAME.srt", "embedded:stream N"
    or ""), the text encoding of a sidecar ("" otherwise), and warnings naming files."""

    cues: list[Cue]
    source: str = ""
    encoding: str = ""
    warnings: list[str] = field(default_factory=list)


def find_subtitles(video_path: str | Path) -> FoundSubtitles:
    """The title's timed text. Never raises for subtitle problems.

    Tries sidecar files in preference order, then embedded text streams (English first); the
    first source that yields cues wins. A malformed or undecodable source becomes a warning and
    the next one is tried; dropped cues and a legacy (non-UTF-8) encoding are warnings too.
    """
    warnings: list[str] = []
    for side in find_sidecars(video_path):
        try:
            sub = read_subtitle_file(side)
        except SubtitleParseError as e:
            warnings.append(str(e))
            continue
        if sub.dropped:
            warnings.append(sub.dropped_warning(side))
        if sub.encoding not in ("utf-8", "utf-8-sig", "ascii"):
            # Not an error, but worth knowing when text looks wrong.
            warnings.append(f"{side}: subtitle text decoded as {sub.encoding} (not UTF-8)")
        return FoundSubtitles(sub.cues, f"sidecar:{side.name}", sub.encoding, warnings)
    try:
        streams = embedded_text_streams(video_path)
    except MediafmError as e:
        warnings.append(str(e))
        return FoundSubtitles([], warnings=warnings)
    for index, _lang in streams:
        try:
            cues = read_embedded_cues(video_path, index)
        except MediafmError as e:
            warnings.append(str(e))
            continue
        if cues:
            return FoundSubtitles(cues, f"embedded:stream {index}", "", warnings)
    return FoundSubtitles([], warnings=warnings)


def find_cues(video_path: str | Path) -> tuple[list[Cue], str, list[str]]:
    """`find_subtitles` as (cues, source, warnings)."""
    found = find_subtitles(video_path)
    return found.cues, found.source, found.warnings


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
