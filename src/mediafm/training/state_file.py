"""Training state (optimiser states, RNG states) in files whose loading runs no code.

`torch.save` pickles, and unpickling a file can run any code its author chose: a model folder is
something people share, so a resumed run must not trust it. Here the tensors go into a safetensors
file and the structure around them (nested dicts with int keys, tuples, numbers, strings) into
the file's JSON metadata, with tags for the types JSON lacks. Loading parses JSON and safetensors
only; anything not written by `save_state` is refused with a StoreError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mediafm.errors import StoreError
from mediafm.store.atomic import atomic_path

FORMAT = "mediafm-state/1"
_TENSOR, _ARRAY, _TUPLE, _DICT = "__tensor__", "__ndarray__", "__tuple__", "__dict__"


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()  # clone: safetensors refuses shared storage
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        return {_ARRAY: obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {_DICT: [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a state file")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {_TENSOR} and obj[_TENSOR] in tensors:
        return tensors[obj[_TENSOR]]
    if set(obj) == {_ARRAY, "dtype"} and isinstance(obj["dtype"], str):
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in "biuf":  # numbers only: object arrays are how pickles hide in .npy files
            raise StoreError(path, f"unexpected array type {obj['dtype']!r}")
        return np.asarray(obj[_ARRAY], dtype=dtype)
    if set(obj) == {_TUPLE}:
        return tuple(_decode(v, tensors, path) for v in obj[_TUPLE])
    if set(obj) == {_DICT}:
        return {_decode(k, tensors, path): _decode(v, tensors, path) for k, v in obj[_DICT]}
    raise StoreError(path, "not a mediafm state file (unexpected entry in its structure)")


def save_state(obj: Any, path: str | Path) -> None:
    """Write `obj` (nested dicts/lists/tuples of tensors, arrays and plain values) atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    structure = json.dumps(_encode(obj, tensors))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "structure": structure})


def load_state(path: str | Path) -> Any:
    """Read what `save_state` wrote; StoreError (one line) for anything else."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise StoreError(path, "missing") from None
    except Exception as exc:  # safetensors raises its own SafetensorError (or OSError) for a damaged file
        raise StoreError(path, f"not a readable state file ({type(exc).__name__}: {str(exc)[:200]})") from None
    if meta.get("format") != FORMAT:
        raise StoreError(path, f"not a mediafm state file (format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        structure = json.loads(meta["structure"])
    except (KeyError, ValueError) as exc:
        raise StoreError(path, f"damaged state file ({type(exc).__name__}: {exc})") from None
    return _decode(structure, tensors, path)
