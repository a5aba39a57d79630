"""(t) A transfer-bound upstream: the real API takes about 100 µs a sample on top of its
latency (some 10 s for a 100,000-row page), so how a read is cut into requests decides
its time. A simulator of its own charges that (``--sample-cost-us``) and a fresh gateway
reads from it, planning by its default cost figures and then by what it measures; both
are held against the direct client of (a) and (g) on the same upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from benchmarks import chart, dropin, procs
from benchmarks.context import MS_PER_DAY, Bench
from benchmarks.report import Report, Row

SAMPLE_COST_US = 100.0  # the real API's transfer time per sample
STREAM_GOAL = 1.0  # the cold drop-in read: at most the direct client's time
# the cold chart: the direct client's month windows are already near the best plan here
# (no request may carry over 20,000 samples), so the gateway may add its hop, no more
CHART_GOAL = 1.1


async def run(
    bench: Bench, report: Report, workdir: Path, env: Mapping[str, str], latency_ms: float
) -> None:
    plan = bench.plan
    here = workdir / "transfer"
    here.mkdir(exist_ok=True)
    with (
        procs.simulator(
            here,
            latency_ms=latency_ms,
            sample_cost_us=SAMPLE_COST_US,
            visibility_delay_s=plan.sim_visibility_delay_s,
        ) as sim,
        procs.gateway(here, upstream_url=sim.base_url + "/api", extra_env=env) as gw,
    ):
        fresh = Bench(plan, gw.base_url, sim.base_url, bench.http, bench.collecting)
        await _stream(fresh, report, latency_ms)
        await _chart(fresh, report, latency_ms)


def _cost(latency_ms: float) -> str:
    return f"{latency_ms:g} ms + {SAMPLE_COST_US:g} µs/sample"


async def _stream(bench: Bench, report: Report, latency_ms: float) -> None:
    plan = bench.plan
    hours, size = plan.transfer_stream_hours, plan.transfer_page_size
    span_ms = hours * 3_600_000
    start_ms = bench.window(1)[0]
    label = (
        f"(t) drop-in site stream, {len(bench.collecting):,} pts × {hours} h, "
        f"page_size={size:,}, upstream {_cost(latency_ms)}"
    )
    base = await asyncio.wait_for(
        dropin.page_through(bench, bench.sim_api, start_ms, size, upstream=True, span_ms=span_ms),
        plan.transfer_timeout_s,
    )
    cold = await asyncio.wait_for(
        dropin.page_through(bench, bench.gateway_url + "/api", start_ms, size, span_ms=span_ms),
        plan.transfer_timeout_s,
    )
    same = dropin.same_rows(cold.pages, base.pages)
    if not same:
        report.failures.append(f"{label}: tsgate's pages differ from upstream's")
    report.add(
        [
            chart.wall_row(
                label, "cold: wall time, every page", cold.wall_s, base.wall_s, STREAM_GOAL
            ),
            Row(label, "cold: pages / rows / upstream requests / samples; equal to upstream's",
                f"{cold.page_times} / {cold.rows:,} / {cold.upstream.requests:,} / "
                f"{cold.upstream.samples:,}; {'yes' if same else '**no**'}",
                f"{base.page_times} / {base.rows:,} / {base.upstream.requests:,} / "
                f"{base.upstream.samples:,}"),
        ]
    )  # fmt: skip


async def _chart(bench: Bench, report: Report, latency_ms: float) -> None:
    """Two cold charts of different points: the first planned by the gateway's default
    figures, the second by what the first measured (``upstream.costs``)."""
    plan = bench.plan
    count, days = plan.transfer_chart_points, plan.transfer_chart_days
    picked = bench.pick(2 * count)
    for i, names in enumerate((picked[0::2], picked[1::2])):
        planned = "default cost figures" if i == 0 else "measured costs"
        label = (
            f"(t) chart {count} pts × {days} d, upstream {_cost(latency_ms)}, planned by {planned}"
        )
        _, _, measured = await chart.cold_against_direct(
            bench, label, names, bench.window(days), CHART_GOAL, plan.transfer_timeout_s
        )
        report.add(measured)
    report.notes.append(
        f"(t) a simulator of its own at {_cost(latency_ms)} (the real API's transfer time) "
        "and a fresh gateway against it, with the settings of the other rows; the "
        f"drop-in read is the first {plan.transfer_stream_hours} h of "
        f"{bench.window(1)[0] // MS_PER_DAY} days after the epoch (UTC), every page "
        "compared with upstream's. The charts read two different sets of points over "
        "the same days: the first before the gateway has measured upstream (its default "
        "figures, 200 ms + 100 µs a sample), the second after (`/api/stats` → "
        "`upstream.request_cost`). The direct client is (a)'s: per-point month windows at "
        "tsgate's default concurrency, which for a month of 5-minute samples is already "
        "about the quickest plan a 20,000-sample request cap allows; the paged direct read "
        "waits for each page before asking the next, while tsgate reads the span's stream "
        "as parts side by side."
    )
