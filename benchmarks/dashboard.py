"""(b) A sliding 24 h dashboard refreshed again and again, against refetching the whole
window from upstream on every refresh."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.context import TOKEN, Bench, SimCounts, chart_params, fmt_ms
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import MSGPACK, Fetched, fetch
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient, ClientPolicy

WINDOW_MS = 86_400_000
REQUESTS_GOAL = 1.0
CACHED_GOAL_PCT = 95.0
HEADERS = {"Accept": MSGPACK, "Accept-Encoding": "zstd"}


@dataclass(frozen=True)
class Refresh:
    wall_s: float
    returned: int  # samples in the answer
    upstream: SimCounts
    last_ms: dict[str, int] = field(default_factory=dict)  # each series' newest sample
    new: int = 0  # samples newer than the previous answer's newest, per series


async def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.dash_points)
    label = f"(b) sliding 24 h, {len(names)} pts, {plan.dash_refreshes} refreshes"
    first, refreshes = await asyncio.wait_for(_gateway_refreshes(bench, names), plan.dash_timeout_s)
    base = await asyncio.wait_for(_baseline_refreshes(bench, names), plan.dash_timeout_s)
    report.add(rows(label, first, refreshes, base))
    report.notes.append(
        f"(b) Method: the gateway runs on the real clock, so the dashboard is refreshed "
        f"{plan.dash_refreshes} times {plan.dash_interval_s:g} s apart (after a first, cold "
        "load that is not counted), each time for the 24 h ending at that moment, with "
        "`TSGATE_OPEN_TTL_S=0`: every refresh finds the open day stale, as one a simulated "
        "minute later would with the default 60 s TTL, and fetches what is missing plus the "
        "look-back (`TSGATE_LOOKBACK_S`, 15 min), where samples that became visible late are "
        f"picked up. The simulator makes each sample visible {plan.sim_visibility_delay_s:g} s "
        "after its time (`--visibility-delay-s`), as gateways upload in batches; the site "
        "reports in one burst 30–50 s into every 5-minute sweep. *New samples per refresh* "
        "are those newer than the previous answer's newest sample of the same point. "
        "Upstream requests and samples are deltas of the simulator's `/_sim/stats`; data "
        "requests are those for samples (the others are access re-checks: a token's grant "
        "for the site is asked again every 5 minutes, and the catalog); samples "
        "returned are counted in the (raw, columnar) answers. The baseline refetches the "
        f"whole 24 h with the ACE client ({plan.dash_baseline_refreshes} refreshes)."
    )


async def _gateway_refreshes(bench: Bench, names: Sequence[str]) -> tuple[Refresh, list[Refresh]]:
    first = await _refresh(bench, names, {})
    refreshes: list[Refresh] = []
    previous = first.last_ms
    for _ in range(bench.plan.dash_refreshes):
        await asyncio.sleep(bench.plan.dash_interval_s)
        refreshes.append(await _refresh(bench, names, previous))
        previous = refreshes[-1].last_ms
    return first, refreshes


async def _refresh(bench: Bench, names: Sequence[str], previous: dict[str, int]) -> Refresh:
    end_ms = int(time.time() * 1000)
    params = chart_params(names, end_ms - WINDOW_MS, end_ms, interval="raw", layout="columnar")
    before = await bench.sim_counts()
    fetched = await fetch(
        bench.http, bench.gateway_url + "/api/timeseries", params=params, headers=HEADERS
    )
    fetched.check("dashboard refresh")
    times = times_in(fetched)
    new = sum(int(np.count_nonzero(t > previous[n])) for n, t in times.items() if n in previous)
    last = {n: int(t[-1]) for n, t in times.items() if t.size}
    return Refresh(
        fetched.elapsed_s, samples_in(fetched), await bench.sim_counts() - before, last, new
    )


def times_in(fetched: Fetched) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
    """Each series' sample times in a columnar MessagePack answer (t0 + int32 deltas, or
    float64 times after a long gap; both in byte planes)."""
    body = fetched.decoded()
    out: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = {}
    for s in body.get("series", []) if isinstance(body, dict) else []:
        if "dtp" in s:
            deltas = _unplane(s["dtp"], "<i4").astype(np.int64)
            out[s["name"]] = int(s["t0"]) + np.cumsum(deltas)
        elif "tp" in s:
            out[s["name"]] = _unplane(s["tp"], "<f8").astype(np.int64)
        else:
            raise RuntimeError(f"{s.get('name')}: neither dtp nor tp in a MessagePack series")
    return out


def _unplane(planes: bytes, dtype: str) -> np.ndarray[Any, Any]:
    """A binary column from its byte planes (byte b of element i at b × n + i)."""
    size = np.dtype(dtype).itemsize
    return np.frombuffer(planes, dtype=np.uint8).reshape(size, -1).T.copy().view(dtype).ravel()


def samples_in(fetched: Fetched) -> int:
    """Samples in a chart answer, whatever its layout."""
    body = fetched.decoded()
    if not isinstance(body, dict):
        raise RuntimeError("chart answer is not an object")
    total = 0
    for s in body.get("series", []):
        if "n" in s:
            total += int(s["n"])
        elif "t" in s:
            total += len(s["t"])
        else:
            total += len(s.get("data", []))
    return total


async def _baseline_refreshes(bench: Bench, names: Sequence[str]) -> list[Refresh]:
    client = AceClient(bench.sim_api, ClientPolicy(concurrency=Settings().upstream_concurrency))
    out: list[Refresh] = []
    try:
        for _ in range(bench.plan.dash_baseline_refreshes):
            end_ms = int(time.time() * 1000)
            before = await bench.sim_counts()
            started = time.perf_counter()
            found = await client.points_series(names, end_ms - WINDOW_MS, end_ms, token=TOKEN)
            wall_s = time.perf_counter() - started
            returned = sum(len(s) for s in found.values())
            out.append(Refresh(wall_s, returned, await bench.sim_counts() - before))
    finally:
        await client.aclose()
    return out


def rows(
    label: str, first: Refresh, refreshes: Sequence[Refresh], base: Sequence[Refresh]
) -> list[Row]:
    per_refresh = statistics.mean(r.upstream.data_requests for r in refreshes)
    base_per_refresh = statistics.mean(r.upstream.data_requests for r in base)
    others = sum(r.upstream.requests - r.upstream.data_requests for r in refreshes)
    cached_pct = _cached_pct(refreshes)
    base_samples = statistics.mean(r.upstream.samples for r in base)
    up_samples = statistics.mean(r.upstream.samples for r in refreshes)
    wall = statistics.median(r.wall_s for r in refreshes)
    base_wall = statistics.median(r.wall_s for r in base)
    most = max(r.upstream.data_requests for r in refreshes)
    new = statistics.mean(r.new for r in refreshes)
    return [
        Row(label, "first (cold) load: wall, upstream requests",
            f"{fmt_ms(first.wall_s)}, {first.upstream.requests}"),
        Row(label, "upstream data requests per refresh (mean; max)",
            f"{per_refresh:.2f}; {most}", f"{base_per_refresh:.2f}",
            ratio(base_per_refresh, per_refresh), f"≤ {REQUESTS_GOAL:g}",
            verdict(per_refresh <= REQUESTS_GOAL)),
        Row(label, "other upstream requests over the refreshes (access re-checks, catalog)",
            f"{others}"),
        Row(label, "new samples per refresh (mean; total)",
            f"{new:,.2f}; {sum(r.new for r in refreshes):,}", "", "", "> 0",
            verdict(new > 0)),
        Row(label, "upstream samples per refresh (mean; total)",
            f"{up_samples:,.2f}; {sum(r.upstream.samples for r in refreshes):,}",
            f"{base_samples:,.0f}", ratio(base_samples, up_samples)),
        Row(label, "samples served from cache", f"{cached_pct:.2f} %", "0 %", "",
            f"≥ {CACHED_GOAL_PCT:g} %", verdict(cached_pct >= CACHED_GOAL_PCT)),
        Row(label, "refresh wall time (median)", fmt_ms(wall), fmt_ms(base_wall),
            ratio(base_wall, wall)),
    ]  # fmt: skip


def _cached_pct(refreshes: Sequence[Refresh]) -> float:
    returned = sum(r.returned for r in refreshes)
    upstream = sum(r.upstream.samples for r in refreshes)
    if returned == 0:
        return 0.0
    return max(0.0, 100.0 * (1 - upstream / returned))
