"""Now, in epoch milliseconds: the one wall clock, and the type of every injected clock.

Whatever reads the time takes a :data:`Clock` (tests hand one in through
``create_app(clock_ms=…)``, ``open_services`` and ``open_job_admin``, and move it by hand);
left out, it is :func:`wall_clock_ms`. Durations are measured with ``time.monotonic``
instead, which no wall-clock step can move.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """The system's wall clock, in whole epoch milliseconds."""
    return time.time_ns() // 1_000_000
