"""How late this process's event loop runs what is due: a probe for stalls.

A background loop sleeps ``interval_s`` and measures how much later than asked it woke;
that delay is what every ready request waited too, behind work that held the loop (a
large encode, a decode, a pure-Python merge). The delays are kept as histogram counts
for ``/metrics`` (``tsgate_event_loop_lag_seconds``) with the worst one seen.

The cyclic garbage collector's pauses hold the loop the same way, and are counted too
(``tsgate_gc_pause_seconds``). A full collection walks every tracked object, the whole
startup heap included (imports, the point catalogs): about 100 ms a dozen times in ten
seconds under a cached load, which was those answers' p99. A server process therefore
*settles* its heap once started (:func:`settle_heap`): what starting left behind is
collected and what is alive then is frozen out of the collector's reach.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import time
from dataclasses import dataclass, field

from tsgate.background import Background

# a cached answer takes about a millisecond: a lag past 5 ms is already felt in its p99
LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class LagCounts:
    """Histogram of the measured delays: one count per bucket (the last for +Inf)."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS_S) + 1))
    total_s: float = 0.0
    worst_s: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.buckets)

    def observe(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.buckets[bisect.bisect_left(LAG_BUCKETS_S, lag_s)] += 1
        self.total_s += lag_s
        self.worst_s = max(self.worst_s, lag_s)


def settle_heap() -> int:
    """Collect the garbage of starting up, then freeze every object alive now (``gc.freeze``:
    the cyclic collector no longer walks them, nor frees them, which is what long-lived
    objects need). Call once in a server process, after its services are open; returns
    how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses:
    """The garbage collector's pauses in this process, as histogram counts (``start``
    hooks ``gc.callbacks``, ``stop`` unhooks)."""

    def __init__(self) -> None:
        self.counts = LagCounts()
        self._began = 0.0

    def start(self) -> None:
        if self._hook not in gc.callbacks:
            gc.callbacks.append(self._hook)

    def stop(self) -> None:
        if self._hook in gc.callbacks:
            gc.callbacks.remove(self._hook)

    def _hook(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.counts.observe(time.perf_counter() - self._began)


class LoopLagProbe:
    """Measures the running loop's scheduling delay every ``interval_s`` (0: never), and
    the garbage collector's pauses while started."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.counts = LagCounts()
        self.gc = GcPauses()
        self._task = Background("tsgate-loop-lag")

    def start(self) -> None:
        self.gc.start()
        if self.interval_s > 0:
            self._task.start(self._probe)

    async def aclose(self) -> None:
        self.gc.stop()
        await self._task.stop()

    async def _probe(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.counts.observe(time.perf_counter() - asked - self.interval_s)
