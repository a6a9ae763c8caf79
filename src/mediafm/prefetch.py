"""Run an iterator ahead in a background thread (bounded queue, same order, errors re-raised)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` in order while a background thread computes up to `depth` of them ahead.

    Worth it when producing an item mostly runs without the GIL (file reads, numpy copies, FFmpeg
    decoding, torch ops). An error in the producer is raised here, in the consumer's thread; a
    consumer that stops early stops the producer after the item it is on. `depth <= 0` runs inline.
    """
    if depth <= 0:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)
        finally:
            q.put(done)

    t = threading.Thread(target=work, name="mediafm-prefetch", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            t.join(timeout=0.01)
