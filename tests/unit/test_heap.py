"""A server process settles its heap: startup's garbage collected, the rest frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tsgate.ops.looplag import GcPauses, settle_heap


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process itself goes on collecting as before


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settling_collects_startups_garbage_and_freezes_the_rest() -> None:
    kept = Cycle()
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage
    pauses = GcPauses()
    pauses.start()
    try:
        frozen = settle_heap()
    finally:
        pauses.stop()
    assert frozen > 0 and gc.get_freeze_count() > 0
    assert pauses.counts.count >= 1  # settling collected first
    assert gone() is None  # the garbage cycle was collected before freezing
    # a full collection no longer walks what was frozen: kept lives outside its reach
    assert all(o is not kept for o in gc.get_objects(generation=2))
    assert kept.me is kept


def test_pauses_are_counted_only_while_started() -> None:
    pauses = GcPauses()
    pauses.start()
    pauses.start()  # once, however often started
    assert gc.callbacks.count(pauses._hook) == 1
    gc.collect()
    seen = pauses.counts.count
    assert seen >= 1 and pauses.counts.total_s > 0
    pauses.stop()
    gc.collect()
    assert pauses.counts.count == seen
    assert pauses._hook not in gc.callbacks
