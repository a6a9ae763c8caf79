"""`prefetch`: same items in the same order, producer errors raised in the consumer, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from mediafm.prefetch import prefetch


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_items_in_order(depth):
    assert list(prefetch(iter(range(100)), depth)) == list(range(100))


def test_producer_error_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise KeyError("bad item")

    got = []
    with pytest.raises(KeyError, match="bad item"):
        for x in prefetch(items(), 2):
            got.append(x)
    assert got == [1, 2]


def test_consumer_stopping_early_stops_the_producer():
    made = []

    def items():
        for i in range(10_000):
            made.append(i)
            yield i

    it = prefetch(items(), 2)
    assert next(it) == 0
    it.close()  # what a `break` out of a for loop does
    n = len(made)
    time.sleep(0.05)
    assert len(made) == n <= 4
    assert not [t for t in threading.enumerate() if t.name == "mediafm-prefetch"]
