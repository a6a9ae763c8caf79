"""The per-title unit every engine runs: process one title, write it, or record its failure.

Only this function (called by the engines) catches errors per title: a failed title is recorded
in the store's `failures` table and the run goes on. Ctrl-C stops between writes: finished titles
are complete (their title row is the commit point) and the next run resumes after them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mediafm.errors import MediafmError, failure_reason
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem
from mediafm.ingest.worker import process_title, tidy_after_commit, write_result
from mediafm.store.catalog import Store

log = logging.getLogger(__name__)

SCRATCH = ".scratch"  # hidden folder in the store: streamed media before it is moved into place


@dataclass
class Outcome:
    """What happened to one source file."""

    path: str
    status: str  # "done" | "skipped" | "failed"
    title_id: str = ""
    media_s: float = 0.0
    frames: int = 0
    stage: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)


def scratch_dir(store: Store) -> Path:
    return store.root / SCRATCH


def cleanup_scratch(store: Store) -> None:
    """Remove the scratch folder when nothing is left in it (a live run elsewhere keeps it)."""
    with contextlib.suppress(OSError):
        scratch_dir(store).rmdir()


def ingest_one(item: SourceItem, store: Store, config: IngestConfig,
               progress: Callable[[int], None] | None = None) -> Outcome:
    """Process and write one title; any error is recorded as a failure, never raised.

    KeyboardInterrupt/SystemExit pass through (the worker and writer clean up after themselves).
    """
    try:
        result = process_title(item.path, config, scratch_dir=scratch_dir(store), title_id=item.title_id,
                               key=item.key, progress=progress)
        write_result(store, result)
    except Exception as exc:  # the executor is the one place that catches per title
        return record_failure(store, item.key, item.path, exc)
    return Outcome(str(item.path), "done", item.title_id, result.media_s, result.record.n_frames,
                   warnings=list(result.warnings))


def committed(store: Store, item: SourceItem) -> Outcome | None:
    """The outcome of a title whose writer was lost: done if this version of the file was committed
    (the writer can die after publishing, while tidying up), else None."""
    try:
        row = store.title(item.title_id)
    except MediafmError:
        return None
    if row.get("source_key") != item.key:
        return None
    tidy_after_commit(store, item.title_id, item.key, item.path)  # the cues are re-read from the source
    return Outcome(str(item.path), "done", item.title_id, float(row.get("duration_s") or 0.0),
                   int(row.get("n_frames") or 0), warnings=json.loads(row.get("warnings_json") or "[]"))


def record_failure(store: Store, key: str, path: str | Path, exc: BaseException) -> Outcome:
    """Write the failure row; unexpected (non-mediafm) errors are logged with their traceback."""
    stage = getattr(exc, "mediafm_stage", "ingest")
    if not isinstance(exc, MediafmError):
        log.debug("unexpected error ingesting %s", path, exc_info=exc)
    reason = failure_reason(exc)
    if not isinstance(exc, MediafmError):
        reason = f"{type(exc).__name__}: {reason}"
    try:
        store.record_failure(key, path, stage, exc)
    except Exception as err:  # often the first error's cause (a full disk): the batch goes on
        log.warning("%s: failure not recorded in the store (%s: %s)", path, type(err).__name__, err)
        reason += f" (failure not recorded: {type(err).__name__}: {err})"
    return Outcome(str(path), "failed", stage=stage, error=reason)
