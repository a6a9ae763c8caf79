"""Engines: where the per-title worker runs, swapped by name (video2dataset's distributors).

Every engine takes the titles left to do (after resume) and returns an `EngineRun`; all run the
same per-title unit (`ingest.outcome.ingest_one`) and write the same store layout:

- "local" (`ingest.local.LocalEngine`): this process, one title after another.
- "ray" (`ingest.ray_engine.RayEngine`): Ray tasks on a cluster; needs `pip install 'mediafm[ray]'`.
  Ray itself is imported only when that engine is built, so nothing else pulls Ray in.

An engine is a `@register_engine(name)` class in a module of `mediafm.ingest`; the modules are
imported on the first lookup (mediafm.registry.import_modules), as detectors and encoders are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mediafm.errors import ConfigError, MediafmError
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem
from mediafm.registry import import_modules, lookup, registrar
from mediafm.store.catalog import Store

if TYPE_CHECKING:
    from mediafm.ingest.outcome import Outcome

_E = TypeVar("_E", bound=type)
_ENGINES: dict[str, type] = {}
_register = registrar(_ENGINES)


def register_engine(name: str) -> Callable[[_E], _E]:
    """Class decorator: make an engine constructible by `get_engine(name)`."""
    return _register(name)


@dataclass
class EngineRun:
    """What an engine did: one outcome per title, and the encoding that followed."""

    outcomes: list[Outcome] = field(default_factory=list)
    encoded: list[str] = field(default_factory=list)  # title ids given features
    encode_s: float = 0.0
    encode_error: str = ""  # why encoding did not run or failed ("" when fine or not asked)


class Engine(Protocol):
    def run(self, items: list[SourceItem], store: Store, config: IngestConfig, *, encode: bool,
            show_progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None) -> EngineRun:
        """Ingest `items` (already filtered for resume) into `store`; never raises per title."""
        ...


def available_engines() -> tuple[str, ...]:
    """Names of the registered engines, sorted."""
    import_modules("mediafm.ingest")
    return tuple(sorted(_ENGINES))


def __getattr__(name: str) -> Any:
    # ENGINES is computed on use: the engine modules import this one, so it cannot list them
    # while it is being imported.
    if name == "ENGINES":
        return available_engines()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_engine(name: str, **options: Any) -> Engine:
    """The engine registered as `name`, built with its options (ray: `address`, `workers`);
    options set to None are left out, so callers can pass every engine's options alike.

    Raises ConfigError for an unknown name, an option the engine does not take, or an engine
    whose extra is not installed, before any title is touched.
    """
    import inspect

    import_modules("mediafm.ingest")
    cls = lookup(_ENGINES, name, "engine")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ConfigError(None, f"the {name} engine takes no {', '.join(unknown)}")
    return cls(**options)


def estimate_frames(item: SourceItem) -> int:
    """Frame count from the container header, for a frames progress bar (0 when unknown)."""
    from mediafm.media.decode import probe

    try:
        info = probe(item.path)
    except MediafmError:
        return 0
    if not info.has_video or not info.avg_rate:
        return 0
    return int(info.duration_s * float(info.avg_rate))


def pending_encode(store: Store) -> list[str]:
    """Titles without features (new ones, and any whose encoding was interrupted)."""
    return [t for t in store.title_ids() if not store.has_features(t)]


def encode_pending(store: Store, device: str = "auto") -> tuple[list[str], float, str]:
    """Run the encoders (on `device`) over the titles that lack features. Returns (ids, seconds, error)."""
    ids = pending_encode(store)
    if not ids:
        return [], 0.0, ""
    try:
        from mediafm.encoders.config import EncodeConfig
        from mediafm.encoders.encode_store import encode_store
    except ImportError as exc:
        return [], 0.0, (f"not available ({exc}); titles are ingested without features. "
                         f"Install the encoders and run `mediafm encode {store.root}`")
    t0 = time.perf_counter()
    try:
        encode_store(store, EncodeConfig(device=device), title_ids=ids)
    except MediafmError as exc:
        return [], time.perf_counter() - t0, f"{exc} (titles are ingested; fix and run `mediafm encode {store.root}`)"
    return ids, time.perf_counter() - t0, ""
