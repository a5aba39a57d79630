"""Calendar buckets in a time zone: local days, ISO weeks and months as UTC instants.

A local day is as long as the wall clock says: 23 or 25 hours on daylight-saving days,
and it starts at local midnight (or the first instant after it, where a zone's clocks
skip midnight). Buckets are returned as the UTC epoch milliseconds of their starts, so
every other part of the series core stays zone-free.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from tsgate.core.model import TimeArray

UNITS = ("1d", "7d", "1mo")
UTC = "UTC"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from exc


def local_starts(start_ms: int, end_ms: int, zone_name: str, unit: str) -> TimeArray:
    """The starts of the local ``unit`` buckets (``1d`` days, ``7d`` ISO weeks from Monday,
    ``1mo`` months) overlapping ``[start_ms, end_ms)``, as ascending UTC epoch ms; the
    first is at or before ``start_ms``."""
    if unit not in UNITS:
        raise ValueError(f"unknown calendar unit {unit!r}; use one of {', '.join(UNITS)}")
    tz = zone(zone_name)
    day = _first_day(dt.datetime.fromtimestamp(start_ms / 1000, tz).date(), unit)
    starts = [_midnight_ms(day, tz)]
    while True:
        day = _next(day, unit)
        at = _midnight_ms(day, tz)
        if at >= end_ms:
            break
        starts.append(at)
    return np.array(starts, dtype=np.int64)


def _first_day(day: dt.date, unit: str) -> dt.date:
    if unit == "7d":
        return day - dt.timedelta(days=day.weekday())
    if unit == "1mo":
        return day.replace(day=1)
    return day


def _next(day: dt.date, unit: str) -> dt.date:
    if unit == "1d":
        return day + dt.timedelta(days=1)
    if unit == "7d":
        return day + dt.timedelta(days=7)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _midnight_ms(day: dt.date, tz: ZoneInfo) -> int:
    """Local midnight of ``day`` in UTC ms. ``fold=0`` (PEP 495) makes a midnight the
    clocks skip the end of the gap, and a repeated one its first occurrence: either way
    the first instant of the local day."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    return (local.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)
