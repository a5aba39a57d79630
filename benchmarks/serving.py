"""(w) serving on every core and under mixed load.

The cached small query of (e) against ``tsgate serve --workers 2`` (its own data folder,
the same simulator) and, in the same run, the one-process gateway; then the same load
while a cold year and an export run in each gateway (``mixed``), against the same load
alone just before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from benchmarks import load, procs
from benchmarks.chart import CHART_HEADERS
from benchmarks.context import MS_PER_DAY, Bench, chart_params, fmt_mib, fmt_ms, fmt_s, iso
from benchmarks.plan import SITE, Plan
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import fetch

SCALING_GOAL = 1.7  # two processes serve at least this many times one's requests/s
SCALING_ROUNDS = 2
MIXED_P99_GOAL_S = 0.1
# the mixed scenario's cached load: a steady rate far below one process's capacity (a
# building's dashboards), so its latency shows what the cold work does to it and not
# the queue of a saturating load (whose p99 is the queue's, cold work or not)
PACED_RPS = 1_000.0
PACED_ALONE_S = 4.0
COLD_POINTS = 5

NGINX_REPEATS = 3


@dataclass(frozen=True)
class Mixed:
    alone: load.Outcome
    during: load.Outcome
    cold_s: float | None  # None: not done within the time limit
    export_s: float | None


async def run_workers(
    bench: Bench, report: Report, one: procs.Child, workdir: Path, env: Mapping[str, str]
) -> None:
    plan = bench.plan
    query = _small_query(bench)
    with procs.gateway(
        workdir, upstream_url=bench.sim_api, extra_env=env, workers=2, name="tsgate-w2"
    ) as two:
        procs.reset_peak_rss(two.proc.pid)
        procs.reset_peak_rss(one.proc.pid)
        connections, budget = plan.load_connections, plan.load_requests
        label = f"(w) cached 1 pt × 1 d, {connections:,} connections, `--workers 2`"
        _log("workers: warming both gateways")
        await _warm(two.base_url, query, plan)
        await _warm(one.base_url, query, plan)
        # alternating rounds, the best of each: other work on the machine comes and goes
        rounds: dict[str, list[load.Outcome]] = {"one": [], "two": []}
        for i in range(SCALING_ROUNDS):
            _log(f"workers: round {i + 1} of {SCALING_ROUNDS}")
            for key, child in (("two", two), ("one", one)):
                rounds[key].append(
                    await load.measure(
                        child.base_url, query, child.proc.pid, "–", connections, budget, plan
                    )
                )
        base = max(rounds["one"], key=lambda o: o.rps)
        got = max(rounds["two"], key=lambda o: o.rps)
        errors = got.error_count
        report.add(
            [
                Row(label, f"requests/s, best of {SCALING_ROUNDS} alternating rounds; baseline: "
                    "`--workers 1`, same load, same run",
                    f"{got.rps:,.0f}", f"{base.rps:,.0f}", ratio(got.rps, base.rps),
                    f"≥ {SCALING_GOAL:g}×",
                    verdict(got.rps >= SCALING_GOAL * base.rps and errors == 0)),
                Row(label, "latency p50 / p99", _p(got), _p(base)),
                Row(label, f"load client ({got.client}) CPU per request; % of one core "
                    "(on the same 2 cores)", load.client_cpu(got), load.client_cpu(base)),
                Row(label, "server CPU per request (all processes)",
                    f"{got.cpu_per_request_us:,.0f} µs", f"{base.cpu_per_request_us:,.0f} µs",
                    ratio(base.cpu_per_request_us, got.cpu_per_request_us)),
            ]
        )  # fmt: skip
        for child, years_back in ((one, 2), (two, 3)):
            _log(f"mixed: {child.name}")
            mixed = await _mixed(bench, child, query, years_back)
            report.add(_mixed_rows(child, mixed))
        peak_two, peak_one = two.peak_rss_bytes() or 0, one.peak_rss_bytes() or 0
        report.add(
            [Row(label, "peak RSS (VmHWM, all processes) over (w); baseline: `--workers 1` "
                 "over the same", fmt_mib(peak_two), fmt_mib(peak_one), ratio(peak_one, peak_two))]
        )  # fmt: skip
    report.notes.append(
        "(w) `tsgate serve --workers 2` on its own data folder and the same simulator; the "
        "baseline is the one-process gateway of the other rows, loaded the same way just "
        "before (best of alternating rounds, as other work on the machine comes and goes). "
        "The two server processes share the machine's cores with the load client, so the "
        "scaling is bounded by what the client (its CPU per request is in the rows) and the "
        "machine's other work leave them. Mixed: the same cached query at a steady "
        f"{PACED_RPS:,.0f} requests/s (open loop, on {load.PACED_CONNECTIONS} connections; "
        "each latency counted from when its request fell due, so a stall is charged to "
        "every request behind it) while a cold chart "
        f"({COLD_POINTS} points × {plan.chart_days} d, "
        f"max_points={plan.chart_max_points}) and a CSV export job ({COLD_POINTS} other "
        f"points × {max(7, plan.chart_days // 4)} d, both years back, never read before) "
        f"run; the baseline is the same load alone for {PACED_ALONE_S:g} s just before. A "
        "saturating load is not used here: its p99 is its own queue's, with or without "
        "cold work (rows (e), (f) and the `--workers` rows measure saturation)."
    )


def _small_query(bench: Bench) -> str:
    name = bench.pick(1)[0]
    start_ms, end_ms = bench.window(1)
    return urlencode(chart_params([name], start_ms, end_ms))


async def _warm(base_url: str, query: str, plan: Plan) -> None:
    """Every process computes the answer once: a short load over many connections."""
    # the first answer of each process reaches upstream: give it time on a busy machine
    patient = dataclasses.replace(plan, load_time_limit_s=max(60.0, plan.load_time_limit_s))
    warm = await load._load(base_url, query, 0, "–", 20, 200, patient)
    if warm.errors:
        raise RuntimeError(f"warming {base_url}: {warm.errors}")


async def _mixed(bench: Bench, child: procs.Child, query: str, years_back: int) -> Mixed:
    plan = bench.plan
    quiet = asyncio.Event()
    quiet_s = asyncio.get_running_loop().call_later(PACED_ALONE_S, quiet.set)
    alone = await load.paced(
        child.base_url, query, child.proc.pid, PACED_RPS, quiet, PACED_ALONE_S + 1
    )
    quiet_s.cancel()
    end_ms = bench.window(1)[1] - (years_back - 1) * 365 * MS_PER_DAY
    cold_days, export_days = plan.chart_days, max(7, plan.chart_days // 4)
    cold_names = bench.collecting[-COLD_POINTS:]
    export_names = bench.collecting[-2 * COLD_POINTS : -COLD_POINTS]
    started = time.perf_counter()
    timings: dict[str, float] = {}

    async def cold() -> None:
        params = chart_params(
            cold_names, end_ms - cold_days * MS_PER_DAY, end_ms,
            max_points=plan.chart_max_points, layout="columnar",
        )  # fmt: skip
        got = await fetch(
            bench.http, f"{child.base_url}/api/timeseries", params=params,
            headers=CHART_HEADERS, timeout_s=600,
        )  # fmt: skip
        got.check("cold year during mixed load")
        timings["cold"] = time.perf_counter() - started
        _log(f"mixed: the cold year took {timings['cold']:.1f} s")

    async def export() -> None:
        job = {
            "kind": "export",
            "site": SITE,
            "points": export_names,
            "start": iso(end_ms - export_days * MS_PER_DAY),
            "end": iso(end_ms),
            "format": "csv",
        }
        posted = await bench.http.post(f"{child.base_url}/api/jobs", json=job)
        if posted.status_code != 202:
            raise RuntimeError(f"export job: HTTP {posted.status_code} {posted.text[:200]}")
        status_url = child.base_url + posted.headers["location"]
        while True:
            state = (await bench.http.get(status_url)).json()
            if state["status"] in ("completed", "dead", "cancelled"):
                break
            await asyncio.sleep(0.2)
        if state["status"] != "completed":
            raise RuntimeError(f"export job ended {state['status']}")
        timings["export"] = time.perf_counter() - started
        _log(f"mixed: the export took {timings['export']:.1f} s")

    background = asyncio.gather(cold(), export())
    over = asyncio.Event()
    background.add_done_callback(lambda _: over.set())
    during = asyncio.ensure_future(
        load.paced(child.base_url, query, child.proc.pid, PACED_RPS, over, plan.chart_timeout_s)
    )
    try:
        await asyncio.wait_for(background, plan.chart_timeout_s)
    except TimeoutError:
        _log(f"mixed: the cold work did not finish in {plan.chart_timeout_s:g} s")  # shown
    return Mixed(alone, await during, timings.get("cold"), timings.get("export"))


def _mixed_rows(child: procs.Child, m: Mixed) -> list[Row]:
    processes = "`--workers 2`" if child.name != "tsgate" else "`--workers 1`"
    label = (
        f"(w) mixed: cached 1 pt × 1 d at {PACED_RPS:,.0f}/s while a cold year and an export "
        f"run, {processes}"
    )
    p99 = m.during.p99_s
    errors = m.during.error_count
    return [
        Row(label, "cached latency p50 / p99; baseline: the same load alone", _p(m.during),
            _p(m.alone), ratio(m.alone.p99_s, p99),
            f"p99 ≤ {fmt_ms(MIXED_P99_GOAL_S)}", verdict(p99 <= MIXED_P99_GOAL_S and errors == 0)),
        Row(label, "cached requests answered during / alone (open loop at "
            f"{PACED_RPS:,.0f}/s)", f"{m.during.requests:,} in {m.during.elapsed_s:.1f} s",
            f"{m.alone.requests:,} in {m.alone.elapsed_s:.1f} s"),
        Row(label, "cold year done after; export done after", _done(m.cold_s), _done(m.export_s)),
        Row(label, "errors", f"{errors} {m.during.errors or ''}", goal="0 errors",
            met=verdict(errors == 0)),
    ]  # fmt: skip


def _done(seconds: float | None) -> str:
    return "not within the time limit" if seconds is None else fmt_s(seconds)


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _p(o: load.Outcome) -> str:
    return load.latency(o)
