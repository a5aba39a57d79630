"""``tsgate warm``: fetch a site's points (or a saved chart's) into the cache ahead of use.

The range is cut into units of one month × up to ``batch`` points; ``concurrency`` units
run at once (each bounded again by the reader's upstream concurrency). Progress is the
chunk index itself: a unit whose chunks are all cached costs one SQL read and no upstream
call, so an interrupted warm started again resumes where it stopped, and the bar starts
at what is already cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tsgate.series import extents
from tsgate.series.reader import ReadStats, SeriesReader


@dataclass(frozen=True)
class Unit:
    points: tuple[str, ...]
    start_ms: int
    end_ms: int


@dataclass
class WarmReport:
    units: int = 0
    already_cached: int = 0
    fetched_samples: int = 0
    upstream_requests: int = 0
    failed: list[str] = field(default_factory=list)


def plan_units(names: Sequence[str], start_ms: int, end_ms: int, batch: int) -> list[Unit]:
    """Month-long (calendar, UTC) units of at most ``batch`` points, oldest first."""
    units = []
    month = extents.months_covering(start_ms, end_ms)
    for m in month:
        lo, hi = max(start_ms, m), min(end_ms, extents.next_month(m))
        if lo >= hi:
            continue
        for i in range(0, len(names), max(1, batch)):
            units.append(Unit(tuple(names[i : i + batch]), lo, hi))
    return units


async def warm(
    reader: SeriesReader,
    site: str,
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    token: str,
    concurrency: int = 4,
    batch: int = 50,
    on_unit: Callable[[Unit, bool], None] | None = None,
) -> WarmReport:
    """Make the chunks of ``names`` cover ``[start_ms, end_ms)``; ``on_unit(unit, fetched)``
    is called as each unit is done (``fetched`` False when it was cached already)."""
    units = plan_units(names, start_ms, end_ms, batch)
    report = WarmReport(units=len(units))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(unit: Unit) -> None:
        async with gate:
            missing = await reader.missing_samples(
                site, unit.points, unit.start_ms, unit.end_ms, token=token
            )
            if missing == 0:
                report.already_cached += 1
                fetched = False
            else:
                stats = ReadStats()
                await reader.ensure(
                    site, unit.points, unit.start_ms, unit.end_ms, token=token, stats=stats
                )
                if stats.stale:
                    report.failed.append(f"{unit.points[0]}… {unit.start_ms}: upstream failed")
                report.fetched_samples += stats.fetched_samples
                report.upstream_requests += stats.upstream_requests
                fetched = True
        if on_unit is not None:
            on_unit(unit, fetched)

    await asyncio.gather(*(one(u) for u in units))
    return report
