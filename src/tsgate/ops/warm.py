"""``tsgate warm``: fetch a site's points (or a saved chart's) into the cache ahead of use;
and :class:`ChartWarmer`, which the maintenance pass runs to keep recently used saved
charts cached (``TSGATE_WARM_CHARTS_DAYS``).

The range is cut into units of one month × up to ``batch`` points; ``concurrency`` units
run at once (each bounded again by the reader's upstream concurrency). Progress is the
chunk index itself: a unit whose chunks are all cached costs one SQL read and no upstream
call, so an interrupted warm started again resumes where it stopped, and the bar starts
at what is already cached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import Forbidden, NotFound, TsgateError
from tsgate.series.chart import saved_range
from tsgate.series.reader import ReadStats, SeriesReader

log = logging.getLogger("tsgate.warm")
MAX_WARM_CHARTS = 1000  # charts one pass keeps warm, most recently used first
LAST_WEEK_MS = 7 * MS_PER_DAY  # a chart's "last week" overlay


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


# ---- saved charts kept warm by the maintenance pass ------------------------------------


class SavedChartLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...


class UsedCharts(Protocol):
    async def used_since(self, since_ms: int, limit: int) -> Sequence[SavedChartLike]:
        """Charts of every scope used since then, most recently used first."""
        ...


class SiteAccess(Protocol):
    async def check(self, site: str, token: str) -> object:
        """Raise Forbidden or NotFound unless ``token`` may read ``site``."""
        ...


class SiteCatalog(Protocol):
    async def fresh(self, site: str, token: str) -> str:
        """Make the site's point catalog fresh (it describes the chart's points)."""
        ...


@dataclass
class ChartWarmCounters:
    """What keeping saved charts warm did since the process started."""

    passes: int = 0
    charts: int = 0  # charts whose ranges were made cached
    skipped: int = 0  # the service token may not read the chart's site
    fetched_units: int = 0
    upstream_requests: int = 0
    fetched_samples: int = 0
    failures: int = 0


@dataclass
class ChartWarmer:
    """Each pass: the saved charts used in the last ``days`` get their saved range (and
    its last-week copy) cached, and their site's point catalog kept fresh, with the
    service token, one chart after another, at most ``concurrency`` units at once. A
    chart holds no token: the service token's own access to the chart's site is asked
    first, so a site it may not read is never fetched (and a caller's later read is
    checked with the caller's token, as always)."""

    reader: SeriesReader
    charts: UsedCharts
    access: SiteAccess
    token: str
    days: float
    concurrency: int = 2
    catalog: SiteCatalog | None = None
    limit: int = MAX_WARM_CHARTS
    counters: ChartWarmCounters = field(default_factory=ChartWarmCounters)

    async def run(self, now_ms: int) -> int:
        """One pass; how many charts it made cached (0 when it is off)."""
        if self.days <= 0 or not self.token:
            return 0
        self.counters.passes += 1
        used = await self.charts.used_since(now_ms - int(self.days * MS_PER_DAY), self.limit)
        done = 0
        for chart in used:
            done += await self._one(chart, now_ms)
        return done

    async def _one(self, chart: SavedChartLike, now_ms: int) -> int:
        config = chart.config
        site, points = str(config.get("site", "")), [str(p) for p in config.get("points", [])]
        try:
            await self.access.check(site, self.token)
        except (Forbidden, NotFound):
            self.counters.skipped += 1
            return 0
        try:
            if self.catalog is not None:
                await self.catalog.fresh(site, self.token)
            start_ms, end_ms = saved_range(config, now_ms)
            spans = [(start_ms, end_ms)]
            if config.get("compare"):
                spans.append((start_ms - LAST_WEEK_MS, end_ms - LAST_WEEK_MS))
            reports = [
                await warm(
                    self.reader,
                    site,
                    points,
                    lo,
                    hi,
                    token=self.token,
                    concurrency=self.concurrency,
                )
                for lo, hi in spans
            ]
        except TsgateError as exc:
            self.counters.failures += 1
            log.warning("saved chart %s not warmed: %s", chart.id, exc.detail)
            return 0
        for report in reports:
            self.counters.fetched_units += report.units - report.already_cached
            self.counters.upstream_requests += report.upstream_requests
            self.counters.fetched_samples += report.fetched_samples
        if any(report.failed for report in reports):
            self.counters.failures += 1
            return 0
        self.counters.charts += 1
        return 1
