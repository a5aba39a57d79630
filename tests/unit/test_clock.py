"""The one wall clock (whole epoch milliseconds, in step with the system's) and the one
RFC 3339 rendering of a time."""

from __future__ import annotations

import datetime as dt
import re
import time

from hypothesis import given
from hypothesis import strategies as st

from tsgate.api.limits import MAX_TIME_MS, MIN_TIME_MS
from tsgate.clock import format_utc, wall_clock_ms


def test_the_wall_clock_is_the_system_time_in_whole_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = wall_clock_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int) and before <= now <= after


@given(st.integers(MIN_TIME_MS, MAX_TIME_MS))
def test_a_time_renders_as_rfc3339_utc_to_the_millisecond(ms: int) -> None:
    text = format_utc(ms)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    # read back by an independent parser: the same instant, nothing lost
    back = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert (back - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1) == ms


def test_the_edges_of_the_calendar_and_of_a_second() -> None:
    assert format_utc(0) == "1970-01-01T00:00:00.000Z"
    assert format_utc(-1) == "1969-12-31T23:59:59.999Z"
    assert format_utc(MIN_TIME_MS) == "0001-01-01T00:00:00.000Z"
    assert format_utc(MAX_TIME_MS) == "9999-12-31T23:59:59.999Z"
