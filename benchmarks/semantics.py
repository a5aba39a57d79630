"""(g) Building-automation answers against the plain UTC path, in the same run: a year of
local daily time-weighted means (``tz=site&agg=twavg``) against UTC daily means
(``agg=avg``) for the chart's points, and ``/api/quality`` for every collecting point of
the simulator's large site (about 3,500 points) over 7 days against UTC hourly ``avg``
charts of the same points and range.
Warm: the cache holds the samples; each repeat asks a range 1 ms shorter (still cached),
so the response cache cannot answer and every figure is the query's own work; a last
quality row asks the same range again, which its kept answer serves."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from benchmarks.context import Bench, chart_params, collecting_points, fmt_ms, iso
from benchmarks.report import Report, Row, ratio

REPEATS = 5
BATCH = 100  # points per baseline chart URL
LARGE_SITE = "large_campus"  # the simulator's site of about 3,500 points (--large-site)


async def _timed(bench: Bench, path: str, params: dict[str, str | int]) -> float:
    started = time.perf_counter()
    resp = await bench.http.get(bench.gateway_url + path, params=params, timeout=600)
    elapsed = time.perf_counter() - started
    if resp.status_code != 200:
        raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:200]}")
    return elapsed


async def _median(bench: Bench, path: str, make: Sequence[dict[str, str | int]]) -> float:
    await _timed(bench, path, make[0])  # warm-up: fills the cache for this shape
    return statistics.median([await _timed(bench, path, p) for p in make[1:]])


async def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.chart_points)
    start_ms, end_ms = bench.window(plan.chart_days)

    def daily(i: int, **extra: str) -> dict[str, str | int]:
        return chart_params(names, start_ms, end_ms - i, interval="1d", **extra)

    ends = range(REPEATS + 1)
    utc = await _median(bench, "/api/timeseries", [daily(i, agg="avg") for i in ends])
    local = await _median(
        bench, "/api/timeseries", [daily(i, agg="twavg", tz="site") for i in ends]
    )
    label = f"(g) {len(names)} pts × {plan.chart_days} d, daily"
    report.add(
        [
            Row(
                label,
                f"warm: local twavg, wall (median of {REPEATS})",
                fmt_ms(local),
                fmt_ms(utc) + " (UTC avg)",
                ratio(utc, local),
            ),
        ]
    )
    week_start, week_end = bench.window(7)
    every = await collecting_points(bench.http, bench.sim_url, LARGE_SITE)

    def quality(i: int) -> dict[str, str | int]:
        return {"site": LARGE_SITE, "start": iso(week_start), "end": iso(week_end - i)}

    batches = [every[k : k + BATCH] for k in range(0, len(every), BATCH)]

    def hourly(batch: Sequence[str], i: int) -> dict[str, str | int]:
        params = chart_params(batch, week_start, week_end - i, interval="1h", agg="avg")
        return {**params, "site": LARGE_SITE}

    # the same points by UTC hourly means, in charts of BATCH points (one URL each); their
    # warm-ups fill the cache, so the quality figure is warm too
    h = 0.0
    for batch in batches:
        h += await _median(bench, "/api/timeseries", [hourly(batch, i) for i in ends])
    q = await _median(bench, "/api/quality", [quality(i) for i in ends])
    # the same range asked again: its answer was kept (settled history, nothing to change)
    again = await _median(bench, "/api/quality", [quality(0) for _ in ends])
    label = f"(g) /api/quality, {len(every)} pts × 7 d"
    baseline = f"{fmt_ms(h)} (UTC 1h avg, {len(batches)} charts)"
    report.add(
        [
            Row(
                label,
                f"warm: wall (median of {REPEATS})",
                fmt_ms(q),
                baseline,
                ratio(h, q),
                goal="≤ 200 ms",
                met="yes" if q <= 0.2 else "no",
            ),
            Row(
                label,
                f"warm, the same range again (kept answer; median of {REPEATS})",
                fmt_ms(again),
                baseline,
                ratio(h, again),
            ),
        ]
    )
