"""(g) The drop-in paginated stream of a whole site: every page of one settled day, cold
and warm, against the same pages read straight from upstream. Every page tsgate serves
is held equal to upstream's, row for row."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from benchmarks.chart import wall_row
from benchmarks.context import MS_PER_DAY, TOKEN, Bench, SimCounts, fmt_s, iso
from benchmarks.plan import SITE
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import fetch

COLD_GOAL = 1.2  # cold: at most this many times the direct read's time
WARM_GOAL = 5.0  # warm: at least this many times faster than the direct read


@dataclass(frozen=True)
class Paged:
    wall_s: float
    pages: list[bytes]  # the decoded bodies, in order
    upstream: SimCounts
    rows: int
    hits: int  # pages answered from tsgate's response cache

    @property
    def page_times(self) -> int:
        return len(self.pages)


async def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    start_ms, _ = bench.window(1)
    for i, page_size in enumerate(plan.dropin_page_sizes):
        day_ms = start_ms - i * MS_PER_DAY  # each page size reads its own, cold day
        label = (
            f"(g) drop-in site stream, {len(bench.collecting):,} pts × 24 h,"
            f" page_size={page_size:,}"
        )
        base = await asyncio.wait_for(
            page_through(bench, bench.sim_api, day_ms, page_size, upstream=True),
            plan.dropin_timeout_s,
        )
        cold = await asyncio.wait_for(
            page_through(bench, bench.gateway_url + "/api", day_ms, page_size),
            plan.dropin_timeout_s,
        )
        warm = [
            await asyncio.wait_for(
                page_through(bench, bench.gateway_url + "/api", day_ms, page_size),
                plan.dropin_timeout_s,
            )
            for _ in range(plan.dropin_warm_repeats)
        ]
        same = all(same_rows(p.pages, base.pages) for p in (cold, *warm))
        if not same:
            report.failures.append(f"{label}: tsgate's pages differ from upstream's")
        report.add(rows(label, base, cold, warm, same))
        report.notes.append(_note(label, day_ms, base))


async def page_through(
    bench: Bench,
    api: str,
    start_ms: int,
    page_size: int,
    *,
    upstream: bool = False,
    span_ms: int = MS_PER_DAY,
) -> Paged:
    """Every page of ``[start_ms, start_ms + span_ms)``, following ``next_cursor``."""
    url = f"{api}/sites/{SITE}/timeseries/paginated"
    headers = {"Authorization": f"Bearer {TOKEN}"} if upstream else {}
    params: dict[str, str | int] = {
        "start_time": iso(start_ms),
        "end_time": iso(start_ms + span_ms),
        "page_size": page_size,
        "raw_data": "true",
    }
    before = await bench.sim_counts()
    pages: list[bytes] = []
    count = 0
    hits = 0
    started = time.perf_counter()
    while True:
        fetched = await fetch(bench.http, url, params=params, headers=headers, timeout_s=300)
        fetched.check(f"page {len(pages) + 1} of {url}")
        pages.append(fetched.body)
        hits += fetched.header("X-Cache-Status", "") == "HIT"
        body = msgspec.json.decode(fetched.body)
        count += len(body["point_samples"])
        if not body.get("next_cursor"):
            break
        params["cursor"] = body["next_cursor"]
    wall_s = time.perf_counter() - started
    return Paged(wall_s, pages, await bench.sim_counts() - before, count, hits)


def same_rows(a: Sequence[bytes], b: Sequence[bytes]) -> bool:
    """The pages of ``a`` and ``b`` hold the same objects, page for page."""
    return _rows(a) == _rows(b)


def _rows(pages: Sequence[bytes]) -> list[object]:
    return [msgspec.json.decode(p) for p in pages]


def rows(label: str, base: Paged, cold: Paged, warm: Sequence[Paged], same: bool) -> list[Row]:
    warm_s = statistics.median(w.wall_s for w in warm)
    n = len(warm)
    return [
        wall_row(label, "cold: wall time, every page", cold.wall_s, base.wall_s, COLD_GOAL),
        Row(label, "cold: pages / rows / upstream requests",
            f"{cold.page_times} / {cold.rows:,} / {cold.upstream.requests:,}",
            f"{base.page_times} / {base.rows:,} / {base.upstream.requests:,}"),
        Row(label, f"warm: wall time, every page (median of {n})", fmt_s(warm_s),
            fmt_s(base.wall_s), ratio(base.wall_s, warm_s), goal=f"≥ {WARM_GOAL:g}× direct",
            met=verdict(warm_s * WARM_GOAL <= base.wall_s)),
        Row(label, "warm: upstream requests; pages kept whole (HIT); equal to upstream's",
            f"{sum(w.upstream.requests for w in warm)}; "
            f"{sum(w.hits for w in warm)} of {sum(w.page_times for w in warm)}; "
            f"{'yes' if same else '**no**'}"),
    ]  # fmt: skip


def _note(label: str, start_ms: int, base: Paged) -> str:
    return (
        f"{label.split(',')[0]}: every page of {iso(start_ms)} – {iso(start_ms + MS_PER_DAY)} UTC "
        "(`raw_data=true`, JSON, identity encoding), following `next_cursor` to the end; "
        "the baseline reads the same pages from the simulator with the same HTTP client. "
        "Each page size reads a different day, so both cold reads start from an empty cache. "
        f"The direct read moved {base.upstream.samples:,} samples in "
        f"{base.upstream.requests} requests; every page tsgate served, cold and warm, is "
        "compared with upstream's, decoded, in the same run."
    )
