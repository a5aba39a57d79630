"""(a) A chart of many points over a long range, cold and warm, against the raw fetch a
chart without tsgate has to make (the same ACE client reading straight from upstream)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks import procs
from benchmarks.context import (
    MS_PER_DAY,
    TOKEN,
    Bench,
    SimCounts,
    chart_params,
    fmt_mib,
    fmt_ms,
    fmt_s,
    iso,
)
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import MSGPACK, Fetched, fetch
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient, ClientPolicy

WARM_GOAL_MS = 100.0
COLD_GOAL = 0.75  # the cold chart in at most this share of the direct client's time
QUARTER_GOAL = 1.0  # a shorter cold chart (plan.quarter_days) no slower than the direct client
RSS_GOAL = 2.0  # its peak memory growth at most this many times the samples it fetched
SAMPLE_BYTES = 16  # a sample held as its time (int64 ms) and value (float64)
JOB_POLL_S = 0.5
CHART_HEADERS = {"Accept": MSGPACK, "Accept-Encoding": "zstd"}


@dataclass(frozen=True)
class Baseline:
    wall_s: float
    samples: int
    upstream: SimCounts


@dataclass(frozen=True)
class Answer:
    fetched: Fetched
    wall_s: float  # including any job the gateway made us wait for
    upstream: SimCounts

    @property
    def server_ms(self) -> float | None:
        return self.fetched.header_float("X-Processing-Time")

    @property
    def cache(self) -> str:
        return f"{self.fetched.header('X-Cache-Status')}/{self.fetched.header('X-Cache-Source')}"


@dataclass(frozen=True)
class Memory:
    """tsgate's resident memory as its cold read began, and its peak during the read."""

    before: int | None
    peak: int | None


async def run(bench: Bench, report: Report, gw: procs.Child) -> None:
    plan = bench.plan
    names = bench.pick(plan.chart_points)
    start_ms, end_ms = bench.window(plan.chart_days)
    label = f"(a) chart {len(names)} pts × {plan.chart_days} d, max_points={plan.chart_max_points}"
    base = await asyncio.wait_for(baseline(bench, names, start_ms, end_ms), plan.chart_timeout_s)
    params = chart_params(
        names, start_ms, end_ms, max_points=plan.chart_max_points, layout="columnar"
    )
    await _warm_up(bench, names, start_ms)
    procs.reset_peak_rss(gw.proc.pid)
    before = gw.rss_bytes()
    cold = await asyncio.wait_for(ask(bench, params), plan.chart_timeout_s)
    memory = Memory(before, gw.peak_rss_bytes())
    cold.fetched.check("cold chart")
    warm = await asyncio.wait_for(_repeat(bench, params), plan.chart_timeout_s)
    for answer in warm:
        answer.fetched.check("warm chart")
    report.add(rows(label, base, cold, warm, memory))
    report.notes.append(_note(cold, base, names, start_ms, end_ms))
    if plan.quarter_days:
        # before the year that (a′) reads after (a)'s: no scenario has read it
        q_end = start_ms - plan.chart_days * MS_PER_DAY
        await _quarter(bench, report, names, q_end - plan.quarter_days * MS_PER_DAY, q_end)


async def _warm_up(bench: Bench, names: Sequence[str], before_ms: int) -> None:
    """One small cold chart of two other points, a month before ``before_ms``: the code
    paths of a cold read are used once (their modules, caches and buffers made), so
    the memory measured next is the read's own, whichever scenario ran before."""
    others = [n for n in bench.collecting if n not in set(names)][:2]
    params = chart_params(
        others, before_ms - 31 * MS_PER_DAY, before_ms, max_points=2000, layout="columnar"
    )
    (await ask(bench, params)).fetched.check("warm-up chart")


async def _quarter(
    bench: Bench, report: Report, names: Sequence[str], start_ms: int, end_ms: int
) -> None:
    """The same chart over a shorter range, cold, against the direct client: less to
    fetch per point, so fewer requests to save and the gateway's own costs weigh more."""
    plan = bench.plan
    label = (
        f"(a) chart {len(names)} pts × {plan.quarter_days} d, max_points={plan.chart_max_points}"
    )
    cold, base, measured = await cold_against_direct(
        bench, label, names, (start_ms, end_ms), QUARTER_GOAL, plan.chart_timeout_s
    )
    report.add(measured)
    report.notes.append(_note(cold, base, names, start_ms, end_ms))


async def cold_against_direct(
    bench: Bench,
    label: str,
    names: Sequence[str],
    span: tuple[int, int],
    goal: float,
    timeout_s: float,
) -> tuple[Answer, Baseline, list[Row]]:
    """The direct client's read of ``names`` over ``span``, then tsgate's cold chart of
    it; the rows: wall times against ``goal`` (a share of the direct time), requests."""
    base = await asyncio.wait_for(baseline(bench, names, *span), timeout_s)
    params = chart_params(names, *span, max_points=bench.plan.chart_max_points, layout="columnar")
    cold = await asyncio.wait_for(ask(bench, params), timeout_s)
    cold.fetched.check(f"cold chart, {label}")
    return cold, base, [
        wall_row(label, "cold: wall time", cold.wall_s, base.wall_s, goal),
        Row(label, "cold: upstream requests / samples",
            f"{cold.upstream.requests:,} / {cold.upstream.samples:,}",
            f"{base.upstream.requests:,} / {base.upstream.samples:,}"),
    ]  # fmt: skip


def wall_row(label: str, measure: str, ours_s: float, direct_s: float, goal: float) -> Row:
    """A cold read's wall time against the direct client's, met when at most ``goal``
    times it."""
    return Row(
        label, measure, fmt_s(ours_s), fmt_s(direct_s), ratio(direct_s, ours_s),
        f"≤ {goal:g}× direct", verdict(ours_s <= goal * direct_s),
    )  # fmt: skip


async def baseline(bench: Bench, names: Sequence[str], start_ms: int, end_ms: int) -> Baseline:
    """The same ACE client tsgate uses, at tsgate's default concurrency, straight to upstream."""
    policy = ClientPolicy(concurrency=Settings().upstream_concurrency)
    client = AceClient(bench.sim_api, policy)
    before = await bench.sim_counts()
    try:
        started = time.perf_counter()
        found = await client.points_series(names, start_ms, end_ms, token=TOKEN)
        wall_s = time.perf_counter() - started
    finally:
        await client.aclose()
    samples = sum(len(s) for s in found.values())
    return Baseline(wall_s, samples, await bench.sim_counts() - before)


async def ask(bench: Bench, params: dict[str, str | int]) -> Answer:
    """One chart request; a ``202`` (job) is followed until the answer is inline."""
    before = await bench.sim_counts()
    started = time.perf_counter()
    url = bench.gateway_url + "/api/timeseries"
    fetched = await fetch(bench.http, url, params=params, headers=CHART_HEADERS, timeout_s=600)
    if fetched.status == 202:
        await _wait_job(bench, fetched)
        fetched = await fetch(bench.http, url, params=params, headers=CHART_HEADERS)
    wall_s = time.perf_counter() - started
    return Answer(fetched, wall_s, await bench.sim_counts() - before)


async def _repeat(bench: Bench, params: dict[str, str | int]) -> list[Answer]:
    return [await ask(bench, params) for _ in range(bench.plan.chart_warm_repeats)]


async def _wait_job(bench: Bench, accepted: Fetched) -> None:
    status_url = accepted.headers.get("Location") or ""
    if not status_url:
        raise RuntimeError("chart answered 202 without a Location")
    while True:  # bounded by the caller's wait_for
        resp = await bench.http.get(bench.gateway_url + status_url)
        state = resp.json().get("status")
        if state == "completed":
            return
        if state in ("failed", "cancelled", "dead"):
            raise RuntimeError(f"chart job {status_url}: {state}")
        await asyncio.sleep(JOB_POLL_S)


def rows(
    label: str, base: Baseline, cold: Answer, warm: Sequence[Answer], memory: Memory
) -> list[Row]:
    warm_wall_s = statistics.median(a.wall_s for a in warm)
    server = [a.server_ms for a in warm if a.server_ms is not None]
    warm_server_ms = statistics.median(server) if server else None
    caches = ", ".join(sorted({a.cache for a in warm}))
    n = len(warm)
    return [
        wall_row(label, "cold: wall time", cold.wall_s, base.wall_s, COLD_GOAL),
        *_memory_rows(label, memory, cold.upstream.samples),
        Row(label, "cold: server time, cache status/source",
            f"{_ms(cold.server_ms)}, {cold.cache}"),
        Row(label, "cold: upstream requests / samples",
            f"{cold.upstream.requests:,} / {cold.upstream.samples:,}",
            f"{base.upstream.requests:,} / {base.upstream.samples:,}"),
        Row(label, f"warm: wall time (median of {n})", fmt_ms(warm_wall_s), fmt_s(base.wall_s),
            ratio(base.wall_s, warm_wall_s)),
        Row(label, f"warm: server time (median of {n})", _ms(warm_server_ms),
            goal=f"≤ {WARM_GOAL_MS:.0f} ms",
            met=verdict(warm_server_ms is not None and warm_server_ms <= WARM_GOAL_MS)),
        Row(label, "warm: cache status/source, upstream requests",
            f"{caches}, {sum(a.upstream.requests for a in warm)}"),
    ]  # fmt: skip


def _memory_rows(label: str, memory: Memory, samples: int) -> list[Row]:
    if memory.before is None or memory.peak is None or not samples:
        return []
    grown = max(0, memory.peak - memory.before)
    held = samples * SAMPLE_BYTES
    return [
        Row(label, "cold: peak RSS growth (VmHWM over resident memory at the start); baseline: "
            f"the samples fetched, {SAMPLE_BYTES} B each", fmt_mib(grown), fmt_mib(held),
            ratio(held, grown), f"≤ {RSS_GOAL:g}× the samples", verdict(grown <= RSS_GOAL * held)),
    ]  # fmt: skip


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def _note(cold: Answer, base: Baseline, names: Sequence[str], start_ms: int, end_ms: int) -> str:
    meta = _metadata(cold.fetched)
    total = meta.get("totalSamples")
    returned = meta.get("returnedPoints")
    agree = "the same as" if total == base.samples else "**not** the same as"
    return (
        f"(a) {len(names)} collecting points of demo_campus spread over the site, "
        f"{iso(start_ms)} – {iso(end_ms)} UTC; requested as columnar MessagePack with zstd. "
        f"tsgate reported totalSamples={total} ({agree} the baseline's {base.samples:,} raw "
        f"samples) and returnedPoints={returned}. The baseline is the wall time of "
        "`AceClient.points_series` (per-point month windows in parallel, tsgate's default "
        "concurrency) and does no downsampling, so it flatters the baseline slightly."
    )


def _metadata(fetched: Fetched) -> dict[str, object]:
    try:
        body = fetched.decoded()
    except ValueError:
        return {}
    meta = body.get("metadata") if isinstance(body, dict) else None
    return meta if isinstance(meta, dict) else {}
