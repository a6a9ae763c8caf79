"""Scratch files of running ingests: named after their writer, so a dead writer's files are found."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mediafm.store.commit import host, owner

__all__ = ["clean_dead_scratch", "owner"]


def clean_dead_scratch(scratch_dir: Path) -> int:
    """Remove scratch files left by killed processes of this host (others' live runs are kept)."""
    here = host()
    removed = 0
    if not scratch_dir.exists():
        return 0
    for f in scratch_dir.iterdir():
        m = re.search(r"\.([^.~]+)~(\d+)\.[0-9a-f]{8}\.", f.name)
        if m is None or m.group(1) != here or _alive(int(m.group(2))):
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
    return True
