"""The one name -> object registry mechanism: encoders, shot detectors, ingest engines, poolings,
metrics, probe heads.

A registry's built-in entries live in the modules of one package, each decorated where it is
defined; `import_modules(package)` runs those decorators on first lookup, so no list of modules is
kept by hand and adding an entry is adding one file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable
from typing import TypeVar

from mediafm.errors import ConfigError

F = TypeVar("F")

log = logging.getLogger(__name__)

# No lock: importlib already makes a second thread wait for a module that another is importing.
_IMPORTED: set[str] = set()


def registrar(table: dict[str, F]) -> Callable[..., Callable[[F], F]]:
    """A `@register(name, *aliases)` decorator that stores the object in `table` under each key.

    Registering the same object again is a no-op (a module imported twice); another object under a
    taken key is an error.
    """

    def register(name: str, *aliases: str) -> Callable[[F], F]:
        def deco(obj: F) -> F:
            for key in (name, *aliases):
                if key in table and table[key] is not obj:
                    raise ValueError(f"{key!r} is registered twice")
                table[key] = obj
            return obj
        return deco

    return register


def lookup(table: dict[str, F], name: str, what: str) -> F:
    """`table[name]`, or a ConfigError naming `what` and the registered names."""
    if name not in table:
        raise ConfigError(None, f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))}")
    return table[name]


def import_modules(package: str) -> None:
    """Import every module of `package` (once per process), running the registrations in them.

    Registering modules import their runtime (torch, onnxruntime, scenedetect, ray...) only when an
    object is built, so this stays cheap and a missing optional runtime leaves the entry registered
    (its `check()` gives the reason). A module that needs a missing third-party module to be
    imported at all holds no registration by that rule, and is skipped.
    """
    if package in _IMPORTED:
        return
    root = package.split(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            missing = exc.name or ""
            if not missing or missing.split(".")[0] == root:
                raise  # our own code is broken: never hide it
            log.debug("%s not imported: %s is missing", info.name, missing)
    _IMPORTED.add(package)


def import_reason(modules: Iterable[str]) -> str:
    """'' when every module imports here, else why the first one that fails does not (for `check()`)."""
    for mod in modules:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # any import failure makes the entry unavailable, with the reason
            return f"cannot import {mod}: {type(exc).__name__}: {exc}"
    return ""
