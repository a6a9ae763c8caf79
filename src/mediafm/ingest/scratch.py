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
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS) or gone meanwhile: signal 0 said alive
    return state not in ("Z", "X")
