"""Find the titles to ingest: files or folders (recursive), media extensions only, stable order."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mediafm.errors import MediaDecodeError
from mediafm.store.catalog import source_key, title_id_for


@dataclass(frozen=True)
class SourceItem:
    """One title to ingest: where it is, its resume key and the id it gets in the store."""

    path: Path
    key: str  # `store.catalog.source_key`: path + size + mtime
    title_id: str


def discover(paths: list[str | Path], extensions: tuple[str, ...]) -> list[Path]:
    """Media files under `paths`, resolved, de-duplicated, sorted by path.

    A file named explicitly is taken whatever its extension (the user asked for it); inside folders
    only `extensions` count, so sidecars (.srt, .json, .txt) are never titles. Hidden files and
    folders (store temp files, .git) are skipped.

    Raises:
        MediaDecodeError: a path that does not exist.
    """
    found: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=True):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                        found.add((Path(root) / name).absolute())
        elif p.exists() or p.is_symlink():
            found.add(p.absolute())
        else:
            raise MediaDecodeError(p, "no such file or folder")
    return sorted(found, key=lambda q: str(q))


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
            out.append((f, MediaDecodeError(f, f"cannot read file: {exc.strerror or exc}")))
            continue
        tid = title_id_for(f)
        owner = taken.get(tid) or existing.get(tid)
        if owner is not None and owner != str(f):
            tid = f"{tid}-{hashlib.sha1(str(f).encode()).hexdigest()[:8]}"
        taken[tid] = str(f)
        out.append(SourceItem(path=f, key=key, title_id=tid))
    return out
