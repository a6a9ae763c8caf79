"""One helper for the name -> function registries (poolings, metrics, probe heads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def registrar(table: dict[str, F]) -> Callable[[str], Callable[[F], F]]:
    """A `@register(name)` decorator that stores the function in `table` under `name`."""

    def register(name: str) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            if name in table:
                raise ValueError(f"{name!r} is registered twice")
            table[name] = fn
            return fn
        return deco

    return register
