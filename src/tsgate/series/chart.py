"""Chart queries: raw, aggregated by interval, or downsampled to a pixel budget.

Downsampling reads the coarsest rollup level whose buckets are no wider than one pixel
column (M4 per column is then pixel-exact), so a year of data never touches raw chunks;
only ranges too short for any rollup level are downsampled from raw with MinMaxLTTB.

Every bucketed answer covers exactly ``[start, end)``: the whole buckets inside come from
the rollups, the partial buckets at unaligned edges from the raw samples of the edge
spans only (:func:`exact_buckets`), so an answer does not depend on how much of the
edge days happens to be cached.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsgate.core import calendar, grids, rollups, weighted
from tsgate.core.calendar import UTC
from tsgate.core.downsample import MIN_POINTS, choose_level, m4_from_buckets, minmax_lttb
from tsgate.core.grids import Grid
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.core.quality import GAP_MS, bucket_gaps, sample_gaps
from tsgate.errors import BadParameter
from tsgate.series import periods
from tsgate.series.chunkstore import COARSE_LEVELS_MS, LEVELS_MS
from tsgate.series.planning import PreparedRead
from tsgate.series.reader import ReadStats, SeriesReads
from tsgate.wire.ace import parse_time
from tsgate.wire.chart import ChartAnswer

INTERVALS_MS = {
    "5min": 5 * MS_PER_MINUTE,
    "15min": 15 * MS_PER_MINUTE,
    "1h": MS_PER_HOUR,
    "6h": 6 * MS_PER_HOUR,
    "1d": MS_PER_DAY,
    "7d": 7 * MS_PER_DAY,
}
# where each interval's grid starts: 7d buckets are ISO weeks (1970-01-05 was a Monday)
ORIGINS_MS = {"7d": 4 * MS_PER_DAY}
# calendar intervals: in a zone other than UTC (and 1mo in any) buckets follow the clock
CALENDAR = ("1d", "7d", "1mo")
NOMINAL_MONTH_MS = 30 * MS_PER_DAY
INTERVALS = ("raw", "auto", *INTERVALS_MS, "1mo")
DEFAULT_AUTO_POINTS = 2000
# a saved chart's range presets (the chart page's); each ends on the next whole minute
PRESETS_MS = {
    "1h": MS_PER_HOUR,
    "24h": 24 * MS_PER_HOUR,
    "7d": 7 * MS_PER_DAY,
    "30d": 30 * MS_PER_DAY,
    "365d": 365 * MS_PER_DAY,
}


@dataclass(frozen=True)
class ChartQuery:
    site: str
    points: tuple[str, ...]
    start_ms: int
    end_ms: int
    interval: str = "raw"  # raw | auto | 5min | 15min | 1h | 6h | 1d | 7d
    max_points: int | None = None
    agg: str = "avg"
    tz: str = UTC  # an IANA zone for calendar buckets, or "site" until resolved
    compare_ms: int = 0  # also answer the range this much earlier (< 0), shifted onto it


@dataclass
class ChartResult:
    series: list[Series]
    stats: ReadStats
    total_samples: int  # samples behind the picture
    interval: str  # what was served: raw | 5min | … | m4:<width>
    aggregation: str
    # with compare_ms: the same query over the earlier range, its times shifted onto this one
    compared: list[Series] = field(default_factory=list)
    compared_samples: int = 0
    # per point, the spans longer than the hole threshold without a sample (see quality)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # per point, its gaps longer than a given limit (ms), from what the answer read
    gaps_of: dict[str, Callable[[int], list[tuple[int, int]]]] = field(default_factory=dict)


def saved_range(config: dict[str, Any], now_ms: int) -> tuple[int, int]:
    """``[start, end)`` of a saved chart's range: a preset ends on the next whole minute
    (as on the chart page, so a minute's reloads ask the same question), a custom range
    is as saved (ISO times or epoch ms)."""
    rng = config.get("range") or {"preset": "24h"}
    preset = rng.get("preset", "custom")
    if preset in PRESETS_MS:
        end = -(-now_ms // MS_PER_MINUTE) * MS_PER_MINUTE
        return end - PRESETS_MS[preset], end
    start, end = (_saved_time(rng.get(k), f"config.range.{k}") for k in ("start", "end"))
    if end <= start:
        raise BadParameter("config.range.end", "the saved range ends before it starts")
    return start, end


def _saved_time(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_time(name, str(value))


# (site, point names) -> each point's (kind, mode), as the catalog says after a read
Describe = Callable[[str, Sequence[str]], Awaitable[dict[str, tuple[str, str]]]]
# (site, point names, span judged) -> each point's gap limit in ms over the span
# (core.quality.gap_limit_ms), asked after a read
GapLimits = Callable[[str, Sequence[str], tuple[int, int]], Awaitable[Mapping[str, int]]]


async def run_chart(
    reader: SeriesReads,
    q: ChartQuery,
    *,
    token: str,
    prepared: PreparedRead | None = None,
    describe: Describe | None = None,
    gap_limits: GapLimits | None = None,
) -> ChartResult:
    """The answer to ``q``. ``prepared``: its raw read of the query's span, made ready
    (access checked, rows read, plan made) by the caller, used where the chart reads it
    (its ``earlier`` where a comparison reads the earlier span).
    With ``describe``, a ``twavg`` joins the samples of sampled analog points by lines
    (asked once the samples are stored: an observed mode counts); without it every value
    holds until the next sample. With ``gap_limits``, ``gaps`` lists each point's
    silences longer than its own limit (a point reporting on change is silent by design
    while its value holds); without it, those longer than :data:`GAP_MS`."""
    result = await _run(reader, q, token, prepared, describe)
    if gap_limits is not None and result.gaps_of:
        limits = await gap_limits(q.site, q.points, (q.start_ms, q.end_ms))
        result.gaps = _held(
            {n: found(limits.get(n, GAP_MS)) for n, found in result.gaps_of.items()}
        )
    if q.compare_ms:
        earlier = dataclasses.replace(
            q, start_ms=q.start_ms + q.compare_ms, end_ms=q.end_ms + q.compare_ms, compare_ms=0
        )
        other = await _run(reader, earlier, token, prepared and prepared.earlier, describe)
        result.compared = [Series(s.name, s.t_ms - q.compare_ms, s.v) for s in other.series]
        result.compared_samples = other.total_samples
        _add_edge_stats(result.stats, other.stats)
        result.stats.needed_ms += other.stats.needed_ms
    return result


async def _run(
    reader: SeriesReads,
    q: ChartQuery,
    token: str,
    prepared: PreparedRead | None = None,
    describe: Describe | None = None,
) -> ChartResult:
    interval = q.interval
    if interval == "auto":
        interval = _auto_interval(q.start_ms, q.end_ms, q.max_points or DEFAULT_AUTO_POINTS)
    if interval in INTERVALS_MS or interval in CALENDAR:
        return await _aggregate(reader, q, interval, token, prepared, describe)
    if q.max_points is not None:
        return await _downsample(reader, q, q.max_points, token, prepared)
    found, stats = await reader.read(
        q.site, q.points, q.start_ms, q.end_ms, token=token, prepared=prepared
    )
    series = [found[n] for n in q.points]
    return _with_gaps(
        ChartResult(series, stats, stats.samples, "raw", "none"),
        {n: _sample_gaps(found[n], _until(reader, q)) for n in q.points},
    )


def _auto_interval(start_ms: int, end_ms: int, max_points: int) -> str:
    for name, width in INTERVALS_MS.items():
        if (end_ms - start_ms) // width <= max_points:
            return name
    return "7d"


def grid_for(interval: str, tz: str, start_ms: int, end_ms: int) -> Grid:
    """The buckets of ``interval``: a fixed UTC grid, or local calendar buckets."""
    if interval == "1mo" or (interval in CALENDAR and tz != UTC):
        nominal = NOMINAL_MONTH_MS if interval == "1mo" else INTERVALS_MS[interval]
        return Grid(nominal, starts=calendar.local_starts(start_ms, end_ms, tz, interval))
    return Grid(INTERVALS_MS[interval], ORIGINS_MS.get(interval, 0))


async def exact_buckets(
    reader: SeriesReads,
    site: str,
    points: Sequence[str],
    span: tuple[int, int],
    grid: Grid,
    *,
    token: str,
    prepared: PreparedRead | None = None,
    gaps: Mapping[str, int] | None = None,
) -> tuple[dict[str, rollups.Buckets], ReadStats]:
    """Buckets of ``grid`` holding exactly the samples in ``span``.

    The whole buckets of the coarsest stored level the grid is made of come from the
    rollups; the edge spans around them (less than one level bucket each) are read raw.
    The rollup read comes first and covers the whole span, so a cold query fetches each
    point once and the edge reads are served from the chunks it stored. Local calendar
    buckets in a zone whose offset is not whole hours come from the 15-minute level; a
    grid no level tiles is bucketed from raw samples. ``prepared``: the raw read of
    ``span`` made ready; when it had nothing to fetch, the edge reads are served from its
    index rows too. ``gaps``: per point, how far apart samples may be for a line to join
    them (raw buckets and edges; default 15 minutes).
    """
    gap = {n: (gaps or {}).get(n, rollups.DEFAULT_GAP_MS) for n in points}
    start_ms, end_ms = span
    level = _level_for(grid)
    edges, interior = (
        grids.split_edges(start_ms, end_ms, LEVELS_MS[level]) if level else ([span], None)
    )
    if level is None or interior is None:
        raw, stats = await reader.read(
            site, points, start_ms, end_ms, token=token, prepared=prepared
        )
        return {n: grids.clip_start(grid.bucket(raw[n], gap[n]), start_ms) for n in points}, stats
    found, stats = await reader.read_rollups(
        site, points, level, start_ms, end_ms, token=token, prepared=prepared
    )
    reads = await asyncio.gather(
        *(
            reader.read(site, points, *e, token=token, prepared=prepared and prepared.within(*e))
            for e in edges
        )
    )
    raw_edges = [part for part, _ in reads]
    for _, edge_stats in reads:
        _add_edge_stats(stats, edge_stats)
    return {
        n: grids.compose(
            rollups.crop(found[n], *interior),
            [part[n] for part in raw_edges],
            grid,
            start_ms,
            gap[n],
        )
        for n in points
    }, stats


def linear_points(kinds: Mapping[str, tuple[str, str]]) -> frozenset[str]:
    """The points whose ``twavg`` joins samples by lines: sampled analog points (binary,
    multistate and change-of-value points hold each value until the next sample)."""
    return frozenset(n for n, described in kinds.items() if described == ("analog", "sampled"))


async def line_gaps(reader: SeriesReads, site: str, points: Sequence[str]) -> dict[str, int]:
    """Per point, how far apart samples may be for a line to join them (a linear
    ``twavg``): the hole threshold of its catalog cadence, as its rollups were built."""
    profiles = await reader.profiles(site, points)
    return {n: periods.gap_limit_ms(profiles.get(n, periods.Profile())) for n in points}


def _level_for(grid: Grid) -> str | None:
    """The coarsest stored rollup level whose buckets tile the grid, if any (the
    15-minute level only for calendar buckets: fixed 5min and 15min grids read raw)."""
    levels = LEVELS_MS if grid.starts is not None else COARSE_LEVELS_MS
    fitting = [(ms, name) for name, ms in levels.items() if grid.tiles(ms)]
    return max(fitting)[1] if fitting else None


def _add_edge_stats(stats: ReadStats, edge: ReadStats) -> None:
    """Add what another read of the same answer cost (its needed span is the caller's)."""
    stats.upstream_requests += edge.upstream_requests
    stats.fetched_samples += edge.fetched_samples
    stats.fetched_ms += edge.fetched_ms
    stats.sources |= edge.sources
    stats.stale = stats.stale or edge.stale


async def _aggregate(
    reader: SeriesReads,
    q: ChartQuery,
    interval: str,
    token: str,
    prepared: PreparedRead | None = None,
    describe: Describe | None = None,
) -> ChartResult:
    grid = grid_for(interval, q.tz, q.start_ms, q.end_ms)
    lines = q.agg == "twavg" and describe is not None
    gaps = await line_gaps(reader, q.site, q.points) if lines else None
    found, stats = await exact_buckets(
        reader,
        q.site,
        q.points,
        (q.start_ms, q.end_ms),
        grid,
        token=token,
        prepared=prepared,
        gaps=gaps,
    )
    linear = linear_points(await describe(q.site, q.points)) if describe and lines else frozenset()
    if weighted.is_time_weighted(q.agg):
        until = min(q.end_ms, reader.clock_ms() + 1)
        series = [
            Series(
                n,
                found[n].start_ms,
                weighted.values(
                    found[n], q.agg, grid.ends(found[n], until), until, linear=n in linear
                ),
            )
            for n in q.points
        ]
    else:
        series = [rollups.as_series(found[n], q.agg, n) for n in q.points]
    total = sum(int(found[n].count.sum()) for n in q.points)
    return _with_gaps(
        ChartResult(series, stats, total, interval, q.agg),
        {n: _bucket_gaps(found[n], _until(reader, q)) for n in q.points},
    )


async def _downsample(
    reader: SeriesReads,
    q: ChartQuery,
    max_points: int,
    token: str,
    prepared: PreparedRead | None = None,
) -> ChartResult:
    level_ms = choose_level(q.start_ms, q.end_ms, max_points, sorted(COARSE_LEVELS_MS.values()))
    if level_ms is None:
        raw, raw_stats = await reader.read(
            q.site, q.points, q.start_ms, q.end_ms, token=token, prepared=prepared
        )
        series = [minmax_lttb(raw[n], max_points) for n in q.points]
        return _with_gaps(
            ChartResult(series, raw_stats, raw_stats.samples, "raw", "minmax-lttb"),
            {n: _sample_gaps(raw[n], _until(reader, q)) for n in q.points},
        )
    width = m4_width(q.start_ms, q.end_ms, max_points, level_ms)
    found, stats = await exact_buckets(
        reader,
        q.site,
        q.points,
        (q.start_ms, q.end_ms),
        Grid(width),
        token=token,
        prepared=prepared,
    )
    series = [_fit(m4_from_buckets(found[n], n), max_points) for n in q.points]
    total = sum(int(found[n].count.sum()) for n in q.points)
    return _with_gaps(
        ChartResult(series, stats, total, f"m4:{width}ms", "m4"),
        {n: _bucket_gaps(found[n], _until(reader, q)) for n in q.points},
    )


def _until(reader: SeriesReads, q: ChartQuery) -> tuple[int, int]:
    """The part of the range that can hold samples: up to now."""
    return q.start_ms, max(q.start_ms, min(q.end_ms, reader.clock_ms() + 1))


def _held(gaps: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
    return {n: spans for n, spans in gaps.items() if spans}


Spans = list[tuple[int, int]]


def _sample_gaps(s: Series, span: tuple[int, int]) -> Callable[[int], Spans]:
    return lambda limit_ms: sample_gaps(s, span, limit_ms)


def _bucket_gaps(b: rollups.Buckets, span: tuple[int, int]) -> Callable[[int], Spans]:
    return lambda limit_ms: bucket_gaps(b, span, limit_ms)


def _with_gaps(result: ChartResult, gaps_of: dict[str, Callable[[int], Spans]]) -> ChartResult:
    """``result`` with its gaps longer than :data:`GAP_MS` (and how to find them longer
    than any other limit, once the points' own limits are known)."""
    result.gaps_of = gaps_of
    result.gaps = _held({n: found(GAP_MS) for n, found in gaps_of.items()})
    return result


def m4_width(start_ms: int, end_ms: int, max_points: int, level_ms: int) -> int:
    """M4's bucket width: a whole number of rollup buckets, about one pixel column, such
    that the buckets overlapping the range (partial ones at unaligned edges included) are
    at most ``max_points // 4``, so four points per bucket fit. When one column's width
    leaves an extra edge bucket, the width for one column fewer does not."""
    columns = max(1, max_points // 4)
    width = level_ms
    for divisor in (columns, columns - 1):
        if divisor < 1:
            break
        column_ms = -(-(end_ms - start_ms) // divisor)
        width = max(level_ms, -(-column_ms // level_ms) * level_ms)
        if (end_ms - 1) // width - start_ms // width + 1 <= columns:
            break
    return width


def _fit(s: Series, max_points: int) -> Series:
    # only a one-column chart (max_points < 8) can still hold two buckets; MinMaxLTTB
    # keeps a subset, so every point stays a real sample (extremes included)
    return minmax_lttb(s, max_points) if len(s) > max_points else s


def reads_raw(q: ChartQuery) -> bool:
    """Whether answering ``q`` reads every raw sample of its range: raw samples, 5min or
    15min buckets, or calendar buckets no rollup level tiles."""
    interval = q.interval
    if interval == "raw":
        return q.max_points is None
    if interval == "auto":
        interval = _auto_interval(q.start_ms, q.end_ms, q.max_points or DEFAULT_AUTO_POINTS)
    return _level_for(grid_for(interval, q.tz, q.start_ms, q.end_ms)) is None


def estimate_samples(q: ChartQuery, *, sample_ms: int = 5 * MS_PER_MINUTE) -> int:
    """Raw samples a query would carry (5-minute points), for inline limits."""
    ranges = 2 if q.compare_ms else 1  # a comparison carries the earlier range too
    return (q.end_ms - q.start_ms) // sample_ms * len(q.points) * ranges


# ---- the answer handed to the wire encoder (wire/chart.py) ---------------------------


def answer_of(q: ChartQuery, result: ChartResult) -> ChartAnswer:
    """What a chart query answered, as the wire encoder takes it."""
    return ChartAnswer(
        site=q.site,
        points=q.points,
        start_ms=q.start_ms,
        end_ms=q.end_ms,
        tz=q.tz,
        compare_ms=q.compare_ms,
        aggregation=result.aggregation,
        interval=result.interval,
        total_samples=result.total_samples,
        compared_samples=result.compared_samples,
        series=result.series,
        compared=result.compared,
        provisional=result.stats.provisional,
        gaps=result.gaps,
    )


# ---- progressive answers: a long chart part by part, newest first ----------------------


def part_grid(q: ChartQuery) -> tuple[str, Grid] | None:
    """``(interval, grid)`` when the answer to ``q`` is the concatenation of one answer
    per bucket of ``grid`` (M4 of rollup buckets, or an aggregate that is not
    time-weighted), so that it can be answered part by part; ``None`` otherwise (raw
    samples, MinMaxLTTB, a one-column chart, time-weighted aggregates: their values carry
    over from the bucket before)."""
    interval = q.interval
    if interval == "auto":
        interval = _auto_interval(q.start_ms, q.end_ms, q.max_points or DEFAULT_AUTO_POINTS)
    if interval in INTERVALS_MS or interval in CALENDAR:
        if weighted.is_time_weighted(q.agg):
            return None
        return interval, grid_for(interval, q.tz, q.start_ms, q.end_ms)
    if q.max_points is None or q.max_points < 2 * MIN_POINTS:
        return None
    level_ms = choose_level(q.start_ms, q.end_ms, q.max_points, sorted(COARSE_LEVELS_MS.values()))
    if level_ms is None:
        return None
    width = m4_width(q.start_ms, q.end_ms, q.max_points, level_ms)
    return f"m4:{width}ms", Grid(width)


def edge_at_or_after(grid: Grid, t_ms: int, end_ms: int) -> int:
    """The first bucket boundary of ``grid`` at or after ``t_ms`` (``end_ms`` if none)."""
    if grid.starts is None:
        steps = -(-(t_ms - grid.origin_ms) // grid.width_ms)
        return min(end_ms, grid.origin_ms + steps * grid.width_ms)
    i = int(np.searchsorted(grid.starts, t_ms, side="left"))
    return min(end_ms, int(grid.starts[i])) if i < len(grid.starts) else end_ms


@dataclass
class _Side:
    """One range of a progressive chart (the main one, or its comparison's)."""

    q: ChartQuery
    interval: str
    grid: Grid
    upper_ms: int  # where the part answered last begins (the range's end at first)
    next_first: dict[str, int]  # per point, the first sample after ``upper_ms``


@dataclass
class ChartParts:
    """A chart answered part by part, newest first: each part holds the answer's buckets
    between two boundaries of its grid, so the parts, joined in time order, are the
    answer (series concatenated, gap spans united). A gap that crosses a boundary is
    listed by the older part whole (it knows the newer part's first sample)."""

    q: ChartQuery
    main: _Side
    earlier: _Side | None

    @classmethod
    def plan(cls, q: ChartQuery, now_ms: int) -> ChartParts | None:
        main = cls._side(q, now_ms)
        if main is None:
            return None
        if not q.compare_ms:
            return cls(q, main, None)
        earlier_q = dataclasses.replace(
            q, start_ms=q.start_ms + q.compare_ms, end_ms=q.end_ms + q.compare_ms, compare_ms=0
        )
        earlier = cls._side(earlier_q, now_ms)
        return None if earlier is None else cls(q, main, earlier)

    @staticmethod
    def _side(q: ChartQuery, now_ms: int) -> _Side | None:
        found = part_grid(q)
        if found is None:
            return None
        until = max(q.start_ms, min(q.end_ms, now_ms + 1))
        return _Side(q, found[0], found[1], q.end_ms, dict.fromkeys(q.points, until))

    async def next(
        self, reader: SeriesReads, from_ms: int, *, token: str
    ) -> tuple[ChartQuery, ChartResult]:
        """The next (older) part: the buckets from the first boundary at or after
        ``from_ms`` (the range's start, at or before it) to where the last part began.
        Everything from ``from_ms`` (and its comparison's) on must be stored."""
        span, result = await self._part(reader, self.main, from_ms, token)
        if self.earlier is not None:
            _, other = await self._part(reader, self.earlier, from_ms + self.q.compare_ms, token)
            result.compared = [
                Series(s.name, s.t_ms - self.q.compare_ms, s.v) for s in other.series
            ]
            result.compared_samples = other.total_samples
        return dataclasses.replace(self.q, start_ms=span[0], end_ms=span[1]), result

    @staticmethod
    async def _part(
        reader: SeriesReads, side: _Side, from_ms: int, token: str
    ) -> tuple[tuple[int, int], ChartResult]:
        q = side.q
        lower = (
            q.start_ms if from_ms <= q.start_ms else edge_at_or_after(side.grid, from_ms, q.end_ms)
        )
        lower = min(lower, side.upper_ms)
        span = (lower, side.upper_ms)
        side.upper_ms = lower
        if lower >= span[1]:
            empty = [Series.empty(n) for n in q.points]
            return span, ChartResult(empty, ReadStats(), 0, side.interval, _aggregation(q, side))
        found, stats = await exact_buckets(reader, q.site, q.points, span, side.grid, token=token)
        if side.interval.startswith("m4:"):
            series = [m4_from_buckets(found[n], n) for n in q.points]
        else:
            series = [rollups.as_series(found[n], q.agg, n) for n in q.points]
        gaps = {n: bucket_gaps(found[n], (lower, side.next_first[n])) for n in q.points}
        for n in q.points:
            if len(found[n]):
                side.next_first[n] = int(found[n].first_ms[0])
        total = sum(int(found[n].count.sum()) for n in q.points)
        return span, ChartResult(
            series, stats, total, side.interval, _aggregation(q, side), gaps=_held(gaps)
        )


def _aggregation(q: ChartQuery, side: _Side) -> str:
    return "m4" if side.interval.startswith("m4:") else q.agg
