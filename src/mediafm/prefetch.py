"""Work in background threads: an iterator run ahead (bounded queue, same order, errors re-raised),
and one call run beside the caller (`Background`)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

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


class Background:
    """Run `fn(*args, stop=event)` in a thread; `result()` joins it and re-raises its error here."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._value: Any = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

        def run() -> None:
            try:
                self._value = fn(*args, stop=self._stop)
            except BaseException as exc:  # handed to the caller's thread by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"mediafm-{fn.__name__}", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        """Ask `fn` to stop and wait for it; its result and error are dropped."""
        self._stop.set()
        self._thread.join()
