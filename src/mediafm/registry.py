"""The one name -> object registry mechanism: encoders, shot detectors, poolings, metrics, probe heads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mediafm.errors import ConfigError

F = TypeVar("F")


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
