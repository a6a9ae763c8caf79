"""Committing a title so that readers outside mediafm (pandas, DuckDB) only ever see whole titles.

A title is several files in several table folders (its row in `titles/`, its rows in `shots/`, its
media arrays). All of them are first written and fsynced in a private folder,
`STORE/.staging/<title>.<host>~<pid>.<random>/`, which no table reader looks into. Publishing is
then a few renames with nothing else between them: media, shots, and the title row last, so
the title row's presence still means "done" to `Store`, resume and the executors.

What a reader can see at each point, and what the next writing run (`recover_commits`, called
under the store's writer lock) does after a kill there:

- while staging: nothing of the new version. Recovery deletes the staging folder.
- retracting an older version of the title (its file changed): its title row goes first, then
  its shots and derived files, so the old version disappears, title row first.
- publishing: between the shots rename and the title rename (two consecutive `rename` calls)
  the new shots are visible without their title row. That is the one window no layout of
  per-title files in per-table folders can close; a kill exactly there is rolled forward by the
  next writing run, whose title row is already written and fsynced in the staging folder.

`Store.shots()` reads only the shots of titles that have a row, so mediafm's own readers never see
that window at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

STAGING = ".staging"
# TITLE.HOST~PID.RANDOM, then for scratch files a suffix (`.frames.npy`): `owned_name`
_OWNED_NAME = re.compile(r"^(?P<title_id>.+)\.(?P<host>[^.~]+)~(?P<pid>\d+)\.[0-9a-f]{8}(?P<suffix>\..+)?$")
MEDIA_FILES = ("frames.npy", "audio.npy")
# Tables whose per-title files may hold temp files (`.NAME.XXXX.tmp`) of a killed atomic write.
TABLES = ("titles", "shots", "cues", "features", "failures", "meta")


def _step(name: str) -> None:
    """Called between the commit's steps; tests replace it to fail or die at each one."""


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes renames into the folder durable; not every file system supports it (ignored there).
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def host() -> str:
    """This machine's name as temp file names carry it (no `.` or `~`, which separate fields)."""
    return socket.gethostname().replace(".", "_").replace("~", "_")


def owner() -> str:
    """host~pid of this process: temp files name their writer, so a dead writer's files are found."""
    return f"{host()}~{os.getpid()}"


def owned_name(title_id: str) -> str:
    """A unique name for this process's temp files of one title: TITLE.HOST~PID.RANDOM."""
    return f"{title_id}.{owner()}.{uuid.uuid4().hex[:8]}"


def parse_owned_name(name: str) -> re.Match | None:
    """The fields of an `owned_name` (title_id, host, pid, suffix), or None for any other name."""
    return _OWNED_NAME.match(name)


def commit_title(root: Path, title_id: str, title_row: pa.Table, shots: pa.Table,
                 media: dict[str, Path | np.ndarray | None], drop_derived: bool = False) -> None:
    """Write one title (see the module docstring for the order and what readers see).

    Args:
        root: the store folder.
        title_id: the title.
        title_row: its one-row titles table.
        shots: its shots table.
        media: "frames.npy"/"audio.npy" -> an array to save, a file to move in (same file system,
            e.g. the ingest scratch folder), or None for none. The title's other media files are
            removed.
        drop_derived: also remove what was derived from an earlier version of the title
            (features, meta embedding, contextual embeddings): a re-ingested file's shots differ.
    """
    stage = root / STAGING / owned_name(title_id)
    stage.mkdir(parents=True)
    try:
        for name, src in media.items():
            if isinstance(src, np.ndarray):
                with open(stage / name, "wb") as fh:
                    np.save(fh, src, allow_pickle=False)
                _fsync_file(stage / name)
            elif src is not None:
                os.replace(src, stage / name)  # already fsynced by its writer
        pq.write_table(shots, stage / "shots.parquet")
        _fsync_file(stage / "shots.parquet")
        pq.write_table(title_row, stage / "title.parquet")  # its presence marks the staging as complete
        _fsync_file(stage / "title.parquet")
        _fsync_dir(stage)
        _step("staged")
        retract_title(root, title_id, drop_derived)
        _step("retracted")
        _publish(root, title_id, stage)
    except BaseException:
        if not (root / "titles" / f"{title_id}.parquet").exists():
            _unpublish(root, title_id)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _publish(root: Path, title_id: str, stage: Path) -> None:
    media = root / "media" / title_id
    for name in MEDIA_FILES:
        if (stage / name).exists():
            media.mkdir(parents=True, exist_ok=True)
            os.replace(stage / name, media / name)
    _step("media")
    (root / "shots").mkdir(exist_ok=True)
    (root / "titles").mkdir(exist_ok=True)
    os.replace(stage / "shots.parquet", root / "shots" / f"{title_id}.parquet")
    _step("shots")  # the one point where a reader sees shots without their title row
    os.replace(stage / "title.parquet", root / "titles" / f"{title_id}.parquet")
    _step("title")
    for folder in (media, root / "shots", root / "titles"):
        if folder.exists():
            _fsync_dir(folder)


def _unpublish(root: Path, title_id: str) -> None:
    """Remove what a failed commit already moved in (its title row was not)."""
    (root / "shots" / f"{title_id}.parquet").unlink(missing_ok=True)
    media = root / "media" / title_id
    for name in MEDIA_FILES:
        (media / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        media.rmdir()  # only if empty


def retract_title(root: Path, title_id: str, drop_derived: bool = True) -> None:
    """Remove a title's row, shots, cues and media (and, with `drop_derived`, everything derived
    from them: features, meta embedding, contextual embeddings), title row first."""
    (root / "titles" / f"{title_id}.parquet").unlink(missing_ok=True)
    stale = [root / "shots" / f"{title_id}.parquet", root / "cues" / f"{title_id}.parquet"]
    stale += [root / "media" / title_id / name for name in MEDIA_FILES]
    if drop_derived:
        stale += [root / "features" / f"{title_id}.parquet", root / "meta" / f"{title_id}.npy"]
        stale += list(root.glob(f"contextual/*/shots/{title_id}.parquet"))
        stale += list(root.glob(f"contextual/*/cls/{title_id}.npy"))
    for f in stale:
        f.unlink(missing_ok=True)


def recover_commits(store_or_root) -> list[str]:
    """Finish or undo the commits of writers that died; remove their temp files and any shots
    left without a title row. Call only while holding the store's writer lock (no other writer
    can be mid-commit then). Returns the ids of titles whose commit was rolled forward."""
    root = Path(getattr(store_or_root, "root", store_or_root))
    finished: list[str] = []
    staging = root / STAGING
    if staging.exists():
        for stage in sorted(staging.iterdir()):
            m = parse_owned_name(stage.name)
            staged_title, staged_shots = stage / "title.parquet", stage / "shots.parquet"
            if m and staged_title.exists() and not staged_shots.exists():
                title_id = m["title_id"]
                # Killed between publishing the shots and the title row: finish the commit.
                (root / "titles").mkdir(exist_ok=True)
                os.replace(staged_title, root / "titles" / f"{title_id}.parquet")
                finished.append(title_id)
                log.info("completed the interrupted commit of %s", title_id)
            shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.rmdir()
    titles = {f.stem for f in (root / "titles").glob("*.parquet")}
    for f in (root / "shots").glob("*.parquet"):
        if f.stem not in titles:
            f.unlink(missing_ok=True)  # an older version's commit, killed mid-way
    for table in TABLES:
        for tmp in (root / table).glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    for tmp in (root / "media").glob("*/.*.tmp"):
        tmp.unlink(missing_ok=True)
    return finished
