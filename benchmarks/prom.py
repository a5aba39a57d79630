"""(g) Grafana's route: a PromQL ``query_range`` over many points and a long range, warm,
against the chart API answering the same hourly means in the same run; (h) an aligned
frame (Arrow IPC) against the chart API's 5-minute means of the same points."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from benchmarks.chart import CHART_HEADERS, ask
from benchmarks.context import Bench, chart_params, fmt_ms
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import Fetched, fetch

HOUR_MS = 3_600_000
FRAME_GOAL_S = 1.0
PROM_HEADERS = {"Accept-Encoding": "gzip"}  # as Grafana's data source proxy asks
ARROW = {"Accept": "application/vnd.apache.arrow.stream", "Accept-Encoding": "identity"}


def selector(names: Sequence[str]) -> str:
    """``ace{point=~"a|b|…"}`` with every regex metacharacter of the names bracketed."""
    special = set(".^$*+?()[]{}|\\-")
    escaped = ["".join(f"[{c}]" if c in special else c for c in n) for n in names]
    return 'ace{point=~"' + "|".join(escaped) + '"}'


async def _median(
    bench: Bench, url: str, params: dict[str, str | int], headers: dict[str, str], repeats: int
) -> tuple[float, list[Fetched]]:
    answers = [
        await fetch(bench.http, url, params=params, headers=headers, timeout_s=600)
        for _ in range(repeats)
    ]
    for a in answers:
        a.check(url)
    return statistics.median(a.elapsed_s for a in answers), answers


async def run_promql(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.chart_points)
    start_ms, end_ms = bench.window(plan.chart_days)
    label = f"(g) PromQL query_range {len(names)} pts × {plan.chart_days} d, step 1h"
    chart = chart_params(names, start_ms, end_ms, interval="1h", agg="avg", layout="columnar")
    (await ask(bench, chart)).fetched.check("warming chart")  # fetched once, by either API
    url = bench.gateway_url + "/prometheus/api/v1/query_range"
    window: dict[str, str | int] = {
        "start": (start_ms + HOUR_MS) // 1000,
        "end": end_ms // 1000,
        "step": 3600,
    }
    # the first selector loads the site's catalog into the process: not part of a query
    warm_up = {**window, "query": f"count(last_over_time({selector(names)}[1h]))"}
    (await fetch(bench.http, url, params=warm_up, headers=PROM_HEADERS, timeout_s=600)).check(
        "warm-up"
    )
    # a different function each time, so every answer is evaluated, none replayed
    funcs = ("avg", "max", "min", "sum", "count")[: max(1, plan.chart_warm_repeats)]
    evaluated = [
        await fetch(
            bench.http,
            url,
            headers=PROM_HEADERS,
            timeout_s=600,
            params={**window, "query": f"{f}_over_time({selector(names)}[1h])"},
        )
        for f in funcs
    ]
    charted = [
        await fetch(
            bench.http,
            bench.gateway_url + "/api/timeseries",
            headers=CHART_HEADERS,
            params={**chart, "agg": f},
        )
        for f in funcs
    ]
    for answer in (*evaluated, *charted):
        answer.check("warm query")
    prom_s = statistics.median(a.elapsed_s for a in evaluated)
    chart_s = statistics.median(a.elapsed_s for a in charted)
    repeats = plan.chart_warm_repeats
    avg = {**window, "query": f"avg_over_time({selector(names)}[1h])"}
    cached_s, _ = await _median(bench, url, avg, PROM_HEADERS, repeats)
    chart_cached_s, _ = await _median(
        bench, bench.gateway_url + "/api/timeseries", chart, CHART_HEADERS, repeats
    )
    body = evaluated[0].decoded()
    assert isinstance(body, dict)
    values = sum(len(s["values"]) for s in body["data"]["result"])
    server = statistics.median(a.header_float("X-Processing-Time") or 0.0 for a in evaluated)
    report.add([
        Row(label, f"warm, evaluated (median of {len(funcs)} functions): wall", fmt_ms(prom_s),
            fmt_ms(chart_s), ratio(chart_s, prom_s)),
        Row(label, "warm, evaluated: server time, cache status/source",
            f"{server:,.0f} ms, {evaluated[0].header('X-Cache-Status')}/"
            f"{evaluated[0].header('X-Cache-Source')}"),
        Row(label, f"repeated (response cache), median of {repeats}", fmt_ms(cached_s),
            fmt_ms(chart_cached_s), ratio(chart_cached_s, cached_s)),
        Row(label, "series × steps; answer bytes (gzip JSON / chart msgpack zstd)",
            f"{len(body['data']['result'])} × {values // max(1, len(names)):,}; "
            f"{evaluated[0].wire_bytes:,} B", f"{charted[0].wire_bytes:,} B"),
    ])  # fmt: skip
    report.notes.append(
        f"(g) the baseline column is the chart API (`interval=1h`, the same five aggregates, "
        f"columnar MessagePack) for the same {len(names)} points and range in the same run, "
        "warm. PromQL's `f_over_time(x[1h])` at an hourly step is the hourly rollup of the "
        "hour before each step, read from the same rollups; its answer is JSON with a string "
        "per value, as Prometheus writes it."
    )


async def run_frame(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.frame_points)
    start_ms, end_ms = bench.window(plan.frame_days)
    label = f"(h) frame {len(names)} pts × {plan.frame_days} d, 5 min, Arrow IPC"
    chart = chart_params(names, start_ms, end_ms, interval="5min", agg="avg", layout="columnar")
    (await ask(bench, chart)).fetched.check("warming chart")
    params = {**chart_params(names, start_ms, end_ms, interval="5min"), "format": "arrow"}
    url = bench.gateway_url + "/api/frame"
    repeats = plan.chart_warm_repeats
    frame_s, answers = await _median(bench, url, params, ARROW, repeats)
    # the chart API with a different aggregate each time: computed, not replayed
    charted = [
        await fetch(
            bench.http,
            bench.gateway_url + "/api/timeseries",
            headers=CHART_HEADERS,
            params={**chart, "agg": f},
        )
        for f in ("max", "min", "sum", "count", "first")[:repeats]
    ]
    chart_s = statistics.median(a.elapsed_s for a in charted)
    report.add([
        Row(label, f"warm: wall time (median of {repeats})", fmt_ms(frame_s), fmt_ms(chart_s),
            ratio(chart_s, frame_s), goal=f"≤ {FRAME_GOAL_S:.0f} s",
            met=verdict(frame_s <= FRAME_GOAL_S)),
        Row(label, "rows × columns; bytes",
            f"{_shape(answers[0], len(names))}; {answers[0].wire_bytes:,} B"),
    ])  # fmt: skip
    report.notes.append(
        f"(h) the baseline column is the chart API (`interval=5min`, a different aggregate per "
        f"request, columnar MessagePack, zstd) for the same {len(names)} points and range, "
        "warm, in the same run; the frame reads means and counts, adds the shared index, a "
        "coverage column per point and the Arrow encoding."
    )


def _shape(answer: Fetched, points: int) -> str:
    try:
        import pyarrow as pa

        table = pa.ipc.open_stream(answer.body).read_all()
    except ImportError:
        return f"{points} points"
    return f"{table.num_rows:,} × {table.num_columns}"
