"""The local engine: titles one after another in this process, with title and frame progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem
from mediafm.ingest.engines import EngineRun, encode_pending, estimate_frames, register_engine
from mediafm.ingest.outcome import Outcome, cleanup_scratch, ingest_one, scratch_dir
from mediafm.ingest.scratch import clean_dead_scratch
from mediafm.store.catalog import Store


@register_engine("local")
class LocalEngine:
    """This process, no extra needed. Encoding runs after the last title."""

    def run(self, items: list[SourceItem], store: Store, config: IngestConfig, *, encode: bool,
            show_progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None) -> EngineRun:
        out = EngineRun(run_local(items, store, config, show_progress=show_progress, on_outcome=on_outcome))
        if encode:
            out.encoded, out.encode_s, out.encode_error = encode_pending(store, config.device)
        return out


def run_local(items: list[SourceItem], store: Store, config: IngestConfig, *, show_progress: bool = True,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Ingest `items` one by one (already filtered for resume) with title and frame progress bars."""
    from tqdm import tqdm

    outcomes: list[Outcome] = []
    clean_dead_scratch(scratch_dir(store))
    disable = not show_progress
    # Probing every file up front costs ~10 ms each: only for catalogs of a sensible size.
    total_frames = sum(estimate_frames(i) for i in items) if len(items) <= 2000 else None
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
