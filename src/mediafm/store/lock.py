"""One writer per store: commands that write a store hold an exclusive lock on `STORE/.lock`.

The lock is `fcntl.flock` on an open file, so the kernel drops it when its process dies, however it
dies (kill -9 included): a crashed run never leaves a stale lock behind. The file also names the
holder (pid, host, command) for the message a second writer gets. Readers (`mediafm serve`,
`search`, pandas) take no lock; they see complete titles only (see `store/commit.py`).

flock locks are advisory and local to one machine's kernel; on network file systems they may not
reach other hosts, so Ray workers on other machines rely on the driver's lock (they write only the
titles it hands them).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from mediafm.errors import StoreLockedError

LOCK_NAME = ".lock"

# Locks this process holds, by store folder: nested writers (ingest runs the encoders) share one.
_held: dict[str, list] = {}  # real path -> [open file, depth]
_guard = threading.Lock()


@contextlib.contextmanager
def store_lock(root: str | Path, command: str = "") -> Iterator[None]:
    """Hold the store's writer lock for the `with` block; re-entrant within one process.

    Raises:
        StoreLockedError: another process holds it (names that process).
    """
    root = Path(root)
    key = os.path.realpath(root)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            _held[key] = [_acquire(root, command), 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                entry[0].close()  # closing the file releases the flock


def _acquire(root: Path, command: str):
    path = root / LOCK_NAME
    root.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")  # a+: never truncates another holder's description
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = _describe(fh.read())
        fh.close()
        raise StoreLockedError(root, f"another mediafm process is writing this store ({holder}); "
                               "wait for it to finish, or write to another store") from None
    except BaseException:
        fh.close()
        raise
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "command": command or " ".join(sys.argv[:3])}) + "\n")
    fh.flush()
    return fh


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"

