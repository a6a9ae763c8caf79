"""The Ray ingestion engine: the same per-title worker as the local engine, as Ray tasks.

    mediafm ingest films/ --out /shared/store --engine ray [--address ray://head:10001]

- Decoding + shot detection: one CPU task per title (`ingest_one`, exactly the local code path),
  which writes that title's shards (media/, shots/, titles/) into the shared store. Per-title
  Parquet files are the shards, so the layout is identical to a local run and no writer
  coordinates with another. At most 2 tasks per CPU are in flight, so the driver's memory does
  not grow with the catalog.
- Encoders: a pool of `EncoderActor`s, each loading the models once (one GPU each when the
  cluster has GPUs, else one CPU actor), fed each title as soon as its ingest task finishes.
- Resume and failures: the driver plans exactly like the local engine (titles whose source key
  is in the store are skipped); a task records its own failure; a task lost to a crashed worker
  (OOM kill, node loss) is retried once by Ray and then recorded by the driver.

Ray tasks rather than Ray Data: each title is one heavy, side-effecting unit (it writes its own
files), so a task per title gives the same parallelism with per-title error handling and no
intermediate dataset; Ray Data would add a materialised row format between stages for nothing.
Ray is an optional extra: this module is imported with the other engines on the first engine
lookup, and only building a `RayEngine` imports Ray.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable

from mediafm.errors import ConfigError, MediafmError
from mediafm.ingest.config import IngestConfig
from mediafm.ingest.discover import SourceItem
from mediafm.ingest.engines import EngineRun, pending_encode, register_engine
from mediafm.ingest.outcome import (
    Outcome,
    cleanup_scratch,
    committed,
    ingest_one,
    record_failure,
    scratch_dir,
)
from mediafm.ingest.scratch import clean_dead_scratch
from mediafm.store.catalog import Store

log = logging.getLogger(__name__)

TASKS_PER_CPU = 2  # in-flight ingest tasks per cluster CPU: keeps CPUs busy, bounds driver memory


@register_engine("ray")
class RayEngine:
    """Ray tasks on a cluster (`address`) or a local Ray instance with `workers` CPUs; encoding
    overlaps ingestion on a pool of encoder actors."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        import_ray()  # fail before any title is touched when the extra is missing
        self.address, self.workers = address, workers

    def run(self, items: list[SourceItem], store: Store, config: IngestConfig, *, encode: bool,
            show_progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None) -> EngineRun:
        return run_ray(items, store, config, encode=encode, address=self.address, workers=self.workers,
                       show_progress=show_progress, on_outcome=on_outcome)


def import_ray():
    """`ray`, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(None, "the ray engine needs Ray: pip install 'mediafm[ray]' "
                                f"(ray[data]==2.60.0) ({exc})") from exc
    return ray


def connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address`, or start a local Ray instance. True if this call started it."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict = {"include_dashboard": False, "configure_logging": False, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = workers or os.cpu_count() or 1
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(None, f"cannot start or join Ray at {address or 'a local instance'}: {exc}") from exc
    return True


def _ingest_task(item: SourceItem, store_root: str, config: IngestConfig) -> Outcome:
    """Runs on a Ray worker: the local engine's per-title code path, writing into the shared store."""
    store = Store(store_root)
    clean_dead_scratch(scratch_dir(store))
    return ingest_one(item, store, config)


class EncoderActor:
    """Holds one `EncoderSet` (models loaded once) and encodes titles of the store on demand."""

    def __init__(self, store_root: str, encode_config=None):
        from mediafm.encoders.config import EncodeConfig
        from mediafm.encoders.encode_store import EncoderSet

        self.store = Store(store_root)
        self.encoders = EncoderSet(encode_config or EncodeConfig())
        self.identity = self.encoders.identity()

    def encode(self, title_id: str) -> tuple[str, str]:
        """Write features/<tid>.parquet and meta/<tid>.npy. Returns (title_id, error or "")."""
        from mediafm.encoders.encode_store import encode_titles, read_inputs

        try:
            if self.store.has_features(title_id) and self.store.feature_encoders(title_id) == self.identity:
                return title_id, ""
            inputs = read_inputs(self.store, title_id)
            (columns,) = encode_titles(self.encoders, [inputs])
            self.store.write_features(title_id, columns, encoders=self.identity)
            meta = inputs.meta
            self.store.write_meta_embedding(title_id, self.encoders.text.encode([meta.text()])[0] if meta else None)
        except Exception as exc:  # the executor records per title and goes on
            return title_id, f"{type(exc).__name__}: {exc}"
        return title_id, ""


def _encoder_pool(ray, store_root: str) -> tuple[list, str]:
    """Start the encoder actors: one per GPU when there are GPUs, else one CPU actor."""
    try:
        import mediafm.encoders.encode_store  # noqa: F401  (fail here, on the driver, with a clear message)
    except ImportError as exc:
        return [], f"not available ({exc}); titles are ingested without features"
    gpus = int(ray.cluster_resources().get("GPU", 0))
    opts = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
    cls = ray.remote(**opts)(EncoderActor)
    return [cls.remote(store_root) for _ in range(max(1, gpus))], ""


def _first_line(exc: BaseException) -> str:
    """Ray wraps remote errors with tracebacks; the summary wants the one line that matters."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def run_ray(items: list[SourceItem], store: Store, config: IngestConfig, *, encode: bool = True,
            address: str | None = None, workers: int | None = None, show_progress: bool = True,
            on_outcome: Callable[[Outcome], None] | None = None) -> EngineRun:
    """Ingest `items` (already filtered for resume) on Ray; then encode titles lacking features.

    Returns:
        The per-title outcomes and what the encoder pool did.
    """
    from tqdm import tqdm

    ray = import_ray()
    started = connect(address, workers)
    root = str(store.root.resolve())
    summary = EngineRun()
    outcomes: list[Outcome] = []
    try:
        # A title lost with its worker is retried once; errors inside the task are not exceptions
        # (ingest_one records them), so retry_exceptions stays off.
        task = ray.remote(num_cpus=1, max_retries=1)(_ingest_task)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        max_in_flight = TASKS_PER_CPU * cpus
        actors, summary.encode_error = _encoder_pool(ray, root) if encode else ([], "")
        enc_pending: dict = {}  # ObjectRef -> title id, drained as results arrive
        enc_errors: list[str] = []
        enc_t0 = time.perf_counter()
        next_actor = 0

        def collect(refs: list) -> None:
            for ref in refs:
                tid = enc_pending.pop(ref)
                try:
                    _, err = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the actor died or could not load its models
                    err = _first_line(exc)
                if err:
                    enc_errors.append(f"{tid}: {err}")
                else:
                    summary.encoded.append(tid)

        def submit_encode(tid: str) -> None:
            nonlocal next_actor
            if actors:
                ref = actors[next_actor % len(actors)].encode.remote(tid)
                next_actor += 1
                enc_pending[ref] = tid
                if len(enc_pending) > 64:  # keep the driver's bookkeeping small on big catalogs
                    done, _ = ray.wait(list(enc_pending), num_returns=len(enc_pending), timeout=0)
                    collect(done)

        if actors:
            for tid in pending_encode(store):  # titles ingested earlier whose encoding never ran
                submit_encode(tid)
        queue = deque(items)
        running: dict = {}
        bar = tqdm(total=len(items), desc="titles (ray)", unit="title", disable=not show_progress, file=sys.stderr)
        media_s = 0.0
        try:
            while queue or running:
                while queue and len(running) < max_in_flight:
                    item = queue.popleft()
                    running[task.remote(item, root, config)] = item
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    item = running.pop(ref)
                    try:
                        out = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        # The worker died (twice): done if it died after its commit, else failed.
                        out = committed(store, item)
                        if out is None:
                            lost = MediafmError(item.path, f"Ray worker lost while ingesting ({type(exc).__name__})")
                            lost.mediafm_stage = "ray"  # type: ignore[attr-defined]
                            out = record_failure(store, item.key, item.path, lost)
                    outcomes.append(out)
                    if out.status == "done":
                        media_s += out.media_s
                        submit_encode(out.title_id)
                    if on_outcome is not None:
                        on_outcome(out)
                    bar.set_postfix_str(f"{media_s:.0f}s media, {len(summary.encoded)} encoded", refresh=False)
                    bar.update(1)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=False)  # the worker's cleanup removes its scratch/partials
            raise
        finally:
            bar.close()
        collect(list(enc_pending))
        if enc_errors:
            more = f" (and {len(enc_errors) - 5} more)" if len(enc_errors) > 5 else ""
            summary.encode_error = "; ".join([summary.encode_error] * bool(summary.encode_error) + enc_errors[:5]) + more
        summary.encode_s = time.perf_counter() - enc_t0 if actors else 0.0
        if actors:
            try:
                store.check_encoders()
            except MediafmError as exc:
                summary.encode_error = str(exc)
    finally:
        cleanup_scratch(store)
        if started:
            ray.shutdown()
    summary.outcomes = outcomes
    return summary

