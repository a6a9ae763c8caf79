"""A thread-safe LRU cache bounded by the bytes of what it holds (so memory stays flat however
long the explorer runs and however large the catalog is)."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


def size_of(value: object) -> int:
    """Approximate bytes held by a cached value (arrays, bytes, strings, or anything else)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, (tuple, list)):
        return sum(size_of(v) for v in value) + 8 * len(value)
    return sys.getsizeof(value)


class ByteLRU(Generic[V]):
    """`get_or_make(key, make)`: the cached value, or `make()` stored, evicting least recently used
    entries beyond `max_bytes` (as measured by `sizer`; `lambda v: 1` bounds the entry count).
    Two threads may both make a missing value; one result is kept."""

    def __init__(self, max_bytes: int, sizer: Callable[[V], int] = size_of):
        self.max_bytes = max_bytes
        self.sizer = sizer
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value = make()  # outside the lock: making may be slow, and other keys need not wait
        size = self.sizer(value)
        if size > self.max_bytes:
            return value  # too big to keep
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, old) = self._items.popitem(last=False)
                    self._bytes -= old
        return value

    def peek(self, key: Hashable, default: object = None) -> V | object:
        """The cached value (counted as a use), or `default` when absent; never makes one."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return default
            self._items.move_to_end(key)
            return hit[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
