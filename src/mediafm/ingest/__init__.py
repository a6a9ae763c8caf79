"""Ingestion: title files -> shots, per-shot frames/audio/text in the catalog store.

    from mediafm.ingest import ingest, IngestConfig
    report = ingest(["films/"], "store/", IngestConfig(detector="adaptive"), encode=False)

Engines: "local" (this process, the default, no Ray needed) and "ray" (`pip install
'mediafm[ray]'`; the same per-title worker as Ray tasks). Both resume: source files whose
`source_key` (path + size + mtime) is already in the store are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem, discover, plan_items
from mediafm.ingest.engines import EngineRun, available_engines, get_engine
from mediafm.ingest.outcome import Outcome, record_failure
from mediafm.shots.base import detector_class
from mediafm.store.catalog import Store
from mediafm.store.commit import recover_commits
from mediafm.store.lock import store_lock

__all__ = ["ENGINES", "IngestConfig", "IngestReport", "Outcome", "ingest", "plan"]

log = logging.getLogger(__name__)


def __getattr__(name: str):
    # The engines register when their modules are imported, which needs this package imported first.
    if name == "ENGINES":
        return available_engines()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class IngestReport:
    """The result of one `ingest` call."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    encode_s: float = 0.0
    encoded: list[str] = field(default_factory=list)  # title ids given features in this run
    encode_error: str = ""  # why encoding did not run or failed ("" when fine or not asked)

    def _with(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[Outcome]:
        return self._with("done")

    @property
    def skipped(self) -> list[Outcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[Outcome]:
        return self._with("failed")

    @property
    def media_s(self) -> float:
        """Seconds of media ingested in this run."""
        return sum(o.media_s for o in self.done)

    @property
    def realtime_factor(self) -> float:
        return self.media_s / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        lines = [f"ingested {len(self.done)}, skipped {len(self.skipped)} (already done), "
                 f"failed {len(self.failed)} in {self.wall_s:.1f}s "
                 f"({self.media_s:.1f}s of media, {self.realtime_factor:.1f}x realtime)"]
        for o in self.failed:
            lines.append(f"  FAILED {o.path}: [{o.stage}] {o.error}")
        if self.encoded:
            lines.append(f"encoded {len(self.encoded)} titles in {self.encode_s:.1f}s")
        if self.encode_error:
            lines.append(f"encoders: {self.encode_error}")
        return "\n".join(lines)


def plan(paths: Sequence[str | Path], store: Store, config: IngestConfig) -> tuple[list[SourceItem], list[Outcome]]:
    """Discover the files, give them ids and split off those already done (resume).

    Returns the items to ingest and the outcomes already known (skipped; unreadable files are
    recorded as failures at once).
    """
    files = discover(list(paths), config.extensions)
    titles = store.titles()
    existing = dict(zip(titles["title_id"], titles["path"], strict=True)) if len(titles) else {}
    done_keys = set(titles["source_key"]) if len(titles) else set()
    key_to_tid = dict(zip(titles["source_key"], titles["title_id"], strict=True)) if len(titles) else {}
    todo: list[SourceItem] = []
    known: list[Outcome] = []
    for entry in plan_items(files, existing):
        if isinstance(entry, tuple):
            path, exc = entry
            # No size/mtime to key on: key the failure by the path alone.
            key = "unreadable-" + hashlib.sha1(str(path).encode()).hexdigest()[:16]
            known.append(record_failure(store, key, path, exc))
        elif entry.key in done_keys:
            known.append(Outcome(str(entry.path), "skipped", key_to_tid[entry.key]))
        else:
            todo.append(entry)
    return todo, known


def ingest(paths: Sequence[str | Path], store_root: str | Path, config: IngestConfig | None = None,
           encode: bool = True, engine: str = "local", *, address: str | None = None,
           workers: int | None = None, show_progress: bool = True,
           on_outcome: Callable[[Outcome], None] | None = None) -> IngestReport:
    """Ingest titles into the store at `store_root` (created if missing), then encode them.

    Args:
        paths: files or folders (searched recursively for `config.extensions`).
        store_root: the catalog store folder.
        config: ingestion settings.
        encode: compute per-shot features for the titles that lack them (`encode_store`).
        engine: "local" or "ray".
        address: Ray cluster address (engine="ray"); None starts a local Ray instance.
        workers: Ray CPU workers for a local instance (default: all cores).
        show_progress: tqdm bars on stderr.
        on_outcome: called after each title (e.g. to print its warnings).

    Returns:
        IngestReport with done/skipped/failed outcomes, wall time and seconds of media.

    Raises:
        MediaDecodeError: a path given does not exist. Per-title problems never raise: they are
        recorded in the store's failures table and in the report.
        StoreLockedError: another process is writing the store.
    """
    config = config if config is not None else IngestConfig()
    t0 = time.perf_counter()
    # An unknown detector is a usage error for the whole run, not a failure of every title.
    detector_class(config.detector)
    # Built before the store is touched: an unknown engine or a missing extra fails here.
    runner = get_engine(engine, address=address, workers=workers)
    store = Store(store_root, create=True)
    with store_lock(store.root, "mediafm ingest"):
        report = _ingest_locked(paths, store, config, encode, runner, show_progress=show_progress,
                                on_outcome=on_outcome)
    report.wall_s = time.perf_counter() - t0
    return report


def _ingest_locked(paths: Sequence[str | Path], store: Store, config: IngestConfig, encode: bool, runner, *,
                   show_progress: bool, on_outcome: Callable[[Outcome], None] | None) -> IngestReport:
    recover_commits(store)
    todo, known = plan(paths, store, config)
    report = IngestReport(outcomes=list(known))
    if on_outcome is not None:
        for o in known:
            on_outcome(o)
    run: EngineRun = runner.run(todo, store, config, encode=encode, show_progress=show_progress,
                                on_outcome=on_outcome)
    report.outcomes += run.outcomes
    report.encoded, report.encode_s, report.encode_error = run.encoded, run.encode_s, run.encode_error
    return report
