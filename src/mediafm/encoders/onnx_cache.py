"""ONNX exports of torch encoders, cached on disk so each machine exports a model once.

onnxruntime runs our CPU encoders several times faster than eager torch (EfficientNet-Lite0:
~9x on 2 cores, same outputs to ~1e-6), but exporting takes seconds. The export is written to
`cache_dir()` under a name keyed by everything it depends on (weights digest, torch version,
encoder version), atomically (tmp + rename, so concurrent workers never read half a file). A
cache that cannot be written, or a cached file onnxruntime cannot load, never fails the encoder:
we export again, in memory if need be.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_ENV = "MEDIAFM_CACHE_DIR"  # overrides the cache folder (e.g. a shared volume on a cluster)


def cache_dir() -> Path:
    """mediafm's cache folder: `$MEDIAFM_CACHE_DIR`, else `~/.cache/mediafm` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mediafm"


def cache_name(model: str, encoder_version: str, weights: str | os.PathLike) -> str:
    """A cached export's file stem: changes with the encoder's version, its weights and torch."""
    from importlib.metadata import version

    from mediafm.store.digest import file_sha256

    # torch's version from metadata: importing torch here would cost ~2 s on a cache hit.
    return f"{model}-{encoder_version}-{file_sha256(weights)[:16]}-torch{version('torch')}"


def export_onnx(module: Any, example: Any, input_names: list[str], output_names: list[str],
                dynamic_axes: dict[str, dict[int, str]] | None = None) -> bytes:
    """The module as ONNX bytes; `dynamic_axes` defaults to a free batch axis on every tensor.

    The TorchScript exporter (dynamo=False): it needs no onnxscript and exports these CNN/BERT
    graphs in seconds; the dynamo exporter is slower here and gives the same outputs.
    """
    import torch

    buf = io.BytesIO()
    dynamic = dynamic_axes or {name: {0: "n"} for name in input_names + output_names}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings / deprecation notices: not the user's business
        torch.onnx.export(module, example, buf, dynamo=False, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic)
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    from mediafm.store.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)  # atomic_path creates it with the umask's mode: a shared cache stays readable


def cached_onnx_session(name: str, export: Callable[[], bytes], open_session: Callable[[bytes | str], Any]) -> Any:
    """An onnxruntime session for the model cached as `cache_dir()/onnx/<name>.onnx`.

    Args:
        name: file stem; must change whenever the exported graph would (weights, torch, version).
        export: makes the ONNX bytes (called only on a cache miss or a broken cached file).
        open_session: turns a path or ONNX bytes into a session (e.g. `base.ort_session`).

    Returns:
        The session. A cached file that fails to load is replaced by a fresh export; an unwritable
        cache folder means the export is used from memory (and redone by the next process).
    """
    path = cache_dir() / "onnx" / f"{name}.onnx"
    if path.is_file():
        try:
            return open_session(str(path))
        except Exception:  # onnxruntime raises its own Fail/InvalidProtobuf types: any means a bad file
            pass
    data = export()
    try:
        _write_atomic(path, data)
    except OSError:
        return open_session(data)  # read-only home, full disk...: run from memory
    return open_session(str(path))
