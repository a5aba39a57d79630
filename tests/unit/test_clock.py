"""The one wall clock: whole epoch milliseconds, in step with the system's."""

from __future__ import annotations

import time

from tsgate.clock import wall_clock_ms


def test_the_wall_clock_is_the_system_time_in_whole_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = wall_clock_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int) and before <= now <= after
