"""Now, in epoch milliseconds: the one wall clock, the type of every injected clock, and
the one rendering of a time as RFC 3339 UTC text (logs, export metadata). The ACE wire
form (microseconds, no zone) is the wire contract's own (``wire/ace.py``).

Whatever reads the time takes a :data:`Clock` (tests hand one in through
``create_app(clock_ms=…)``, ``open_services`` and ``open_job_admin``, and move it by hand);
left out, it is :func:`wall_clock_ms`. Durations are measured with ``time.monotonic``
instead, which no wall-clock step can move.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """The system's wall clock, in whole epoch milliseconds."""
    return time.time_ns() // 1_000_000


_EPOCH = dt.datetime(1970, 1, 1)


def format_utc(ms: int) -> str:
    """Epoch ``ms`` as RFC 3339 UTC text to the millisecond: ``2025-10-01T00:00:00.000Z``."""
    return (_EPOCH + dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"
