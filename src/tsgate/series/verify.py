"""``tsgate verify``: compare what is cached with what upstream serves, and repair it.

Per point and UTC day, the cached samples (read from the chunk index and the object
store, never fetched) are compared with a fresh upstream read of the same span: the
sample count and a hash of the times and values. Only the part of a day the cache
claims to cover is compared (an open day up to where it was fetched); days with no
chunk at all are not cached and not compared. A chunk whose object is missing or does
not decode counts as differing. Repair drops the differing point-days (the months
holding them, as ``POST /api/cache/invalidate`` does) and reads them again through
the reader, so the cache is refilled exactly as a request would refill it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY, Series, concat
from tsgate.series.chunkstore import ChunkStore
from tsgate.series.invalidation import invalidate
from tsgate.series.reader import ReadStats, SeriesReader
from tsgate.upstream.base import Upstream

Progress = Callable[[int, int], None]  # (points done, points in all)


@dataclass(frozen=True)
class DayCheck:
    """One point-day compared: ``[start_ms, end_ms)`` is the part the cache covers."""

    point: str
    start_ms: int
    end_ms: int
    cached: int  # samples; -1 when a chunk could not be read
    upstream: int
    cached_hash: str
    upstream_hash: str

    @property
    def differs(self) -> bool:
        return self.cached != self.upstream or self.cached_hash != self.upstream_hash


@dataclass
class VerifyReport:
    site: str
    start_ms: int
    end_ms: int
    points: int = 0
    days: int = 0  # point-days compared
    cached_samples: int = 0
    upstream_samples: int = 0
    differences: list[DayCheck] = field(default_factory=list)
    repaired: int = 0  # point-days dropped and read again


def digest(series: Series) -> str:
    """A hash of a series' times and values (bytes of int64 ms and float64)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(series.t_ms, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(series.v, dtype="<f8").tobytes())
    return h.hexdigest()


def covered_days(
    rows: Sequence[tuple[int, int]], start_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """The parts of each UTC day in ``[start_ms, end_ms)`` the covered spans hold."""
    out: list[tuple[int, int]] = []
    for lo, hi in extents.merge([(max(a, start_ms), min(b, end_ms)) for a, b in rows if b > a]):
        day = extents.day_floor(lo)
        while day < hi:
            part = (max(lo, day), min(hi, day + MS_PER_DAY))
            if part[1] > part[0]:
                out.append(part)
            day += MS_PER_DAY
    return out


async def _cached(
    store: ChunkStore, site: str, name: str, start_ms: int, end_ms: int
) -> tuple[Series, list[tuple[int, int]], list[tuple[int, int]]]:
    """The point's cached samples in range, read from the objects themselves; the spans
    its chunks were fetched for (their coverage and the tail of their last fetch); and
    the periods of chunks whose object is missing, damaged (its
    checksum differs) or does not decode."""
    rows = [r for r in await store.rows(site, [name], start_ms, end_ms) if r.point == name]
    spans = [span for r in rows for span in (*r.coverage, (r.tail_start_ms, r.tail_end_ms))]
    parts: list[Series] = []
    unreadable: list[tuple[int, int]] = []
    for row in rows:
        if not (row.samples and row.object_key):
            continue  # an empty chunk has no object
        series = await store.read_stored(row)
        if series is None:
            unreadable.append((row.period_start_ms, row.period_end_ms))
        else:
            parts.append(series)
    return concat(name, parts).crop(start_ms, end_ms), spans, unreadable


async def verify(
    store: ChunkStore,
    upstream: Upstream,
    site: str,
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    token: str,
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare every cached point-day of ``names`` in ``[start_ms, end_ms)`` with upstream."""
    report = VerifyReport(site, start_ms, end_ms, points=len(names))
    for done, name in enumerate(names, start=1):
        cached, spans, unreadable = await _cached(store, site, name, start_ms, end_ms)
        days = covered_days(spans, start_ms, end_ms)
        if days:
            lo, hi = days[0][0], days[-1][1]
            fresh = (await upstream.points_series([name], lo, hi, token=token)).get(
                name, Series.empty(name)
            )
            for a, b in days:
                want = fresh.crop(a, b)
                lost = any(u0 < b and u1 > a for u0, u1 in unreadable)
                have = None if lost else cached.crop(a, b)
                check = DayCheck(
                    name,
                    a,
                    b,
                    -1 if have is None else len(have),
                    len(want),
                    "unreadable" if have is None else digest(have),
                    digest(want),
                )
                report.days += 1
                report.cached_samples += max(0, check.cached)
                report.upstream_samples += check.upstream
                if check.differs:
                    report.differences.append(check)
        if progress is not None:
            progress(done, len(names))
    return report


async def repair(reader: SeriesReader, report: VerifyReport, *, token: str, now_ms: int) -> int:
    """Drop the differing point-days and read them again; return how many were dropped."""
    by_point: dict[str, list[DayCheck]] = defaultdict(list)
    for d in report.differences:
        by_point[d.point].append(d)
    for name, checks in by_point.items():
        dropped = await invalidate(
            reader.store,
            report.site,
            [name],
            min(c.start_ms for c in checks),
            max(c.end_ms for c in checks),
        )
        # the whole dropped span is read again, as far as it has happened
        hi = min(dropped.end_ms, now_ms + 1)
        if hi > dropped.start_ms:
            await reader.ensure(
                report.site, [name], dropped.start_ms, hi, token=token, stats=ReadStats()
            )
    return len(report.differences)
