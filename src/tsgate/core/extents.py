"""Time arithmetic on half-open millisecond ranges ``[start_ms, end_ms)`` in UTC.

Chunks are UTC days and rollup blobs are UTC months, so the reader asks two questions
over and over: "which periods cover this query?" and "which parts of it are not cached
yet?". Everything here is integer arithmetic on epoch milliseconds; no time zones, no
``datetime`` on the hot path (months need the calendar, days do not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tsgate.core.model import MS_PER_DAY

Range = tuple[int, int]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# the year 10000: "no end given" (well inside int64 and the month arithmetic)
END_OF_TIME_MS = 253_402_300_800_000


def floor_to(ms: int, width_ms: int) -> int:
    """The start of the ``width_ms``-wide slot holding ``ms`` (slots aligned to the epoch).

    Python's ``//`` floors towards minus infinity, so times before 1970 land in the
    slot that contains them, not the one after.
    """
    if width_ms <= 0:
        raise ValueError(f"width_ms must be positive, got {width_ms}")
    return ms - ms % width_ms


def day_floor(ms: int) -> int:
    """Midnight UTC of the day holding ``ms``."""
    return floor_to(ms, MS_PER_DAY)


def _month_index(ms: int) -> int:
    # Months since 1970-01; exact because a day start converts to a date without rounding.
    date = _EPOCH.date() + dt.timedelta(days=day_floor(ms) // MS_PER_DAY)
    return (date.year - 1970) * 12 + (date.month - 1)


def _month_start(index: int) -> int:
    year, month0 = divmod(index, 12)
    date = dt.date(1970 + year, month0 + 1, 1)
    return (date - _EPOCH.date()).days * MS_PER_DAY


def month_floor(ms: int) -> int:
    """Midnight UTC of the first day of the calendar month holding ``ms``."""
    return _month_start(_month_index(ms))


def next_month(ms: int) -> int:
    """The start of the calendar month after the one holding ``ms``."""
    return _month_start(_month_index(ms) + 1)


def days_covering(start_ms: int, end_ms: int) -> list[int]:
    """Start of every UTC day that overlaps ``[start_ms, end_ms)``; empty when the range is."""
    if end_ms <= start_ms:
        return []
    return list(range(day_floor(start_ms), end_ms, MS_PER_DAY))


def months_covering(start_ms: int, end_ms: int) -> list[int]:
    """Start of every UTC calendar month that overlaps ``[start_ms, end_ms)``."""
    if end_ms <= start_ms:
        return []
    first, last = _month_index(start_ms), _month_index(end_ms - 1)
    return [_month_start(i) for i in range(first, last + 1)]


def merge(ranges: Sequence[Range]) -> list[Range]:
    """Sorted, disjoint, non-touching ranges covering the same instants; empty ranges vanish."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            # Touching ranges join too: [a, b) + [b, c) is one fetch, not two.
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(want: Range, have: Sequence[Range]) -> list[Range]:
    """The parts of ``want`` that no range in ``have`` covers, sorted and disjoint."""
    start, end = want
    missing: list[Range] = []
    cursor = start
    for h_start, h_end in merge(have):
        if h_end <= cursor:
            continue
        if h_start >= end:
            break
        if h_start > cursor:
            missing.append((cursor, h_start))
        cursor = max(cursor, h_end)
    if cursor < end:
        missing.append((cursor, end))
    return missing


def is_settled(period_end_ms: int, now_ms: int, settle_ms: int) -> bool:
    """True when a period ended at least ``settle_ms`` ago: late samples have arrived upstream.

    A settled chunk is sealed and never refetched, so the check errs late: exactly at
    the boundary counts as settled, one millisecond before does not.
    """
    return now_ms - period_end_ms >= settle_ms
