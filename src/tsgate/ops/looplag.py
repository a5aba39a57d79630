"""How late this process's event loop runs what is due: a probe for stalls.

A background loop sleeps ``interval_s`` and measures how much later than asked it woke;
that delay is what every ready request waited too, behind work that held the loop (a
large encode, a decode, a pure-Python merge). The delays are kept as histogram counts
for ``/metrics`` (``tsgate_event_loop_lag_seconds``) with the worst one seen.
"""

from __future__ import annotations

import asyncio
import bisect
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


class LoopLagProbe:
    """Measures the running loop's scheduling delay every ``interval_s`` (0: never)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.counts = LagCounts()
        self._task = Background("tsgate-loop-lag")

    def start(self) -> None:
        if self.interval_s > 0:
            self._task.start(self._probe)

    async def aclose(self) -> None:
        await self._task.stop()

    async def _probe(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.counts.observe(time.perf_counter() - asked - self.interval_s)
