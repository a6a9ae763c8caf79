"""Scratch files of running ingests: named after their writer, so a dead writer's files are found."""

from __future__ import annotations

import os
from pathlib import Path

from mediafm.store.commit import host, parse_owned_name


def clean_dead_scratch(scratch_dir: Path) -> int:
    """Remove scratch files left by killed processes of this host (others' live runs are kept)."""
    here = host()
    removed = 0
    if not scratch_dir.exists():
        return 0
    for f in scratch_dir.iterdir():
        m = parse_owned_name(f.name)  # scratch files: owned_name(title) + ".frames.npy" etc.
        if m is None or m["host"] != here or _alive(int(m["pid"])):
            continue
        f.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed writer whose parent died too (a Ray worker after its raylet) is a zombie until init
    # reaps it, and signal 0 still reaches a zombie; in a container whose init never reaps, forever.
    fields = proc_stat(pid)
    return fields is None or fields[0] not in ("Z", "X")  # no /proc (macOS): signal 0 said alive


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...);
    None without /proc or when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
