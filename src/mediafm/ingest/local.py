"""The local executor: titles one after another in this process, with resume and failure records.

Only this module (and the Ray engine) catches errors per title: a failed title is recorded in the
store's `failures` table and the run goes on. Ctrl-C stops between writes: finished titles are
complete (their title row is the commit point) and the next run resumes after them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mediafm.errors import MediafmError
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem
from mediafm.ingest.worker import clean_dead_scratch, process_title, write_result
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
    return Outcome(str(item.path), "done", item.title_id, result.media_s, int(result.record["n_frames"]),
                   warnings=list(result.warnings))


def record_failure(store: Store, key: str, path: str | Path, exc: BaseException) -> Outcome:
    """Write the failure row; unexpected (non-mediafm) errors are logged with their traceback."""
    stage = getattr(exc, "mediafm_stage", "ingest")
    if not isinstance(exc, MediafmError):
        log.debug("unexpected error ingesting %s", path, exc_info=exc)
    store.record_failure(key, path, stage, exc)
    reason = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, MediafmError):
        reason = f"{type(exc).__name__}: {reason}"
    return Outcome(str(path), "failed", stage=stage, error=reason)


def run_local(items: list[SourceItem], store: Store, config: IngestConfig, *, show_progress: bool = True,
              estimate_frames: Callable[[SourceItem], int] | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Ingest `items` one by one (already filtered for resume) with title and frame progress bars."""
    from tqdm import tqdm

    outcomes: list[Outcome] = []
    clean_dead_scratch(scratch_dir(store))
    disable = not show_progress
    # Probing every file up front costs ~10 ms each: only for catalogs of a sensible size.
    total_frames = sum(estimate_frames(i) for i in items) if estimate_frames and len(items) <= 2000 else None
    with tqdm(total=len(items), desc="titles", unit="title", position=0, disable=disable, file=sys.stderr) as tbar, \
         tqdm(total=total_frames or None, desc="frames", unit="frame", position=1, disable=disable,
              file=sys.stderr, smoothing=0.1) as fbar:
        try:
            for item in items:
                tbar.set_postfix_str(item.path.name[-40:], refresh=False)
                out = ingest_one(item, store, config, progress=fbar.update)
                outcomes.append(out)
                if on_outcome is not None:
                    on_outcome(out)
                tbar.update(1)
        finally:
            cleanup_scratch(store)
    return outcomes
