"""(a′) The same long chart answered part by part: a query job fetches its newest week,
then its months newest first, and keeps each finished slice's part of the answer, so a
chart page can draw the latest months while the older ones arrive. Measured: time to the
first part on the client (submitted → first part read), to the whole answer, and the
parts' count.

The range is the one just before (a)'s, so it is cold whether or not (a) ran first."""

from __future__ import annotations

import asyncio
import time

from benchmarks.context import MS_PER_DAY, Bench, fmt_s, iso
from benchmarks.plan import SITE
from benchmarks.report import Report, Row, verdict

FIRST_GOAL_S = 2.0  # issue: first months on screen within 2 s
POLL_S = 0.05


async def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.chart_points)
    end_ms, _ = bench.window(plan.chart_days)
    start_ms = end_ms - plan.chart_days * MS_PER_DAY
    label = f"(a′) chart {len(names)} pts × {plan.chart_days} d part by part"
    body = {
        "kind": "query",
        "site": SITE,
        "points": names,
        "start": iso(start_ms),
        "end": iso(end_ms),
        "max_points": plan.chart_max_points,
        "layout": "columnar",
    }
    first_s, total_s, parts = await asyncio.wait_for(_follow(bench, body), plan.chart_timeout_s)
    report.add(
        [
            Row(label, "cold: first months read (newest part)", fmt_s(first_s),
                goal=f"≤ {FIRST_GOAL_S:.0f} s", met=verdict(first_s <= FIRST_GOAL_S)),
            Row(label, "cold: whole answer read", fmt_s(total_s)),
            Row(label, "parts (the newest week, then months)", str(parts)),
        ]
    )  # fmt: skip
    report.notes.append(
        f"(a′) POST /api/jobs of a query over {iso(start_ms)} – {iso(end_ms)} UTC (the range "
        "before (a)'s, cold), followed by polling its status every "
        f"{POLL_S * 1000:.0f} ms; the first figure is until part 0 (the newest week) was read."
    )


async def _follow(bench: Bench, body: dict[str, object]) -> tuple[float, float, int]:
    started = time.perf_counter()
    posted = await bench.http.post(bench.gateway_url + "/api/jobs", json=body)
    posted.raise_for_status()
    status_url = bench.gateway_url + posted.headers["Location"]
    first_s: float | None = None
    while True:  # bounded by the caller's wait_for
        status = (await bench.http.get(status_url)).json()
        if status["status"] in ("failed", "cancelled", "dead"):
            raise RuntimeError(f"chart job {status_url}: {status['status']}: {status.get('error')}")
        if first_s is None and status.get("parts", 0) >= 1:
            part = await bench.http.get(f"{status_url}/parts/0")
            part.raise_for_status()
            first_s = time.perf_counter() - started
        if status["status"] == "completed":
            result = await bench.http.get(f"{status_url}/result")
            result.raise_for_status()
            total_s = time.perf_counter() - started
            return (total_s if first_s is None else first_s), total_s, int(status.get("parts", 0))
        await asyncio.sleep(POLL_S)
