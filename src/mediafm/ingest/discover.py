"""Find the titles to ingest: files or folders (recursive), media extensions only, stable order."""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mediafm.errors import MediaDecodeError
from mediafm.store.catalog import source_key
from mediafm.store.ids import title_id_for, with_suffix


@dataclass(frozen=True)
class SourceItem:
    """One title to ingest: where it is, its resume key and the id it gets in the store."""

    path: Path
    key: str  # `store.catalog.source_key`: path + size + mtime
    title_id: str


def discover(paths: list[str | Path], extensions: tuple[str, ...]) -> list[Path]:
    """Media files under `paths`, de-duplicated by the file they point to, sorted by path.

    A file named explicitly is taken whatever its extension (the user asked for it); inside folders
    only `extensions` count, so sidecars (.srt, .json, .txt) are never titles. Hidden files and
    folders (store temp files, .git) are skipped. Symbolic links are followed, but a folder is
    entered once however many links lead to it (a link to a parent folder would otherwise repeat
    the tree until the OS refuses), and files reached by several paths are one title, under the
    path without links if one was found, else the shortest. Broken or looping links are kept: `plan_items` records them as failures.

    Raises:
        MediaDecodeError: a path that does not exist.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found += _walk(p.absolute(), extensions)
        elif p.exists() or p.is_symlink():
            found.append(p.absolute())
        else:
            raise MediaDecodeError(p, "no such file or folder")
    # One path per real file: the link-free one if it was found, else the shortest.
    real = {f: _real(f) for f in found}
    seen: set[str] = set()
    unique: list[Path] = []
    for f in sorted(real, key=lambda q: (str(q) != real[q], len(q.parts), str(q))):
        if real[f] not in seen:
            seen.add(real[f])
            unique.append(f)
    return sorted(unique, key=str)


def _walk(root: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Media files under `root`, entering each real folder once."""
    visited: set[tuple[int, int]] = set()
    out: list[Path] = []

    def first_visit(folder: str) -> bool:
        try:
            st = os.stat(folder)
        except OSError:
            return False  # a broken or looping link to a folder: nothing to walk
        key = (st.st_dev, st.st_ino)
        if key in visited:
            return False
        visited.add(key)
        return True

    if not first_visit(str(root)):
        return out
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and first_visit(os.path.join(folder, d)))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                out.append(Path(folder) / name)
    return out


def _real(path: Path) -> str:
    """The file a path leads to; the path itself when it leads nowhere (broken or looping link)."""
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return str(path)


def plan_items(files: list[Path], existing: dict[str, str] | None = None) -> list[SourceItem | tuple[Path, Exception]]:
    """Give each file its resume key and a unique title id.

    Title ids come from the file stem (labels name titles by stem). Two sources with the same stem
    (a.mp4 and a.mkv, or dir1/a.mp4 and dir2/a.mp4) would collide: the second in path order, or
    one whose stem is already taken in the store by another path (`existing`: title_id -> path),
    gets a short hash of its path appended, so ids are stable across runs.
    Files whose key cannot be computed (unreadable) come back as (path, error) for the executor to
    record.
    """
    existing = existing or {}
    taken: dict[str, str] = {}
    out: list[SourceItem | tuple[Path, Exception]] = []
    for f in files:
        try:
            key = source_key(f)
        except OSError as exc:
            out.append((f, MediaDecodeError(f, _unreadable(f, exc))))
            continue
        tid = title_id_for(f)
        owner = taken.get(tid) or existing.get(tid)
        if owner is not None and owner != str(f):
            tid = with_suffix(tid, hashlib.sha1(str(f).encode()).hexdigest()[:8])
        taken[tid] = str(f)
        out.append(SourceItem(path=f, key=key, title_id=tid))
    return out


def _unreadable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "cannot read file: symbolic link loop (the link leads back to itself)"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return "cannot read file: broken symbolic link (its target does not exist)"
    return f"cannot read file: {exc.strerror or exc}"
