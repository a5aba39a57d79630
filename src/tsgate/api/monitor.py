"""``GET /api/monitor``: the monitoring history, alert levels and their changes.

``?metrics=a,b`` (default: all), ``start``/``end`` (ISO times or epoch ms; default the
last day) and ``max_points`` (default 500) per metric: longer histories are averaged
into that many equal time buckets, as a chart would want them. Like ``/api/stats`` it is
an operator's view and is rate limited in the ``admin`` budget.
``GET /api/monitor/report?day=`` is the daily report of one UTC day (``ops/report.py``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import BadParameter
from tsgate.ops.monitor import DAY_MS, METRICS
from tsgate.ops.report import daily_report
from tsgate.wire.ace import parse_time

MAX_POINTS = 10_000
DEFAULT_POINTS = 500
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _time(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lstrip("-").isdigit():
        return int(raw)
    return parse_time(name, raw)


def _max_points(request: Request) -> int:
    raw = request.query_params.get("max_points", str(DEFAULT_POINTS))
    if not raw.isdigit() or not 2 <= int(raw) <= MAX_POINTS:
        raise BadParameter("max_points", f"{raw[:20]!r} is not an integer from 2 to {MAX_POINTS}")
    return int(raw)


def _metrics(request: Request) -> list[str] | None:
    raw = request.query_params.get("metrics")
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = sorted(set(names) - METRICS)
    if unknown:
        raise BadParameter(
            "metrics", f"unknown {', '.join(unknown)[:200]}; one of {', '.join(sorted(METRICS))}"
        )
    return names


def bucketed(points: list[tuple[int, float]], start_ms: int, end_ms: int, n: int) -> dict[str, Any]:
    """``{t, v}`` columns; more than ``n`` points are averaged into ``n`` time buckets
    (each stamped with the mean time of its samples)."""
    if len(points) <= n:
        return {"t": [t for t, _ in points], "v": [v for _, v in points]}
    t = np.fromiter((p[0] for p in points), dtype=np.int64, count=len(points))
    v = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
    slot = ((t - start_ms) * n // max(1, end_ms - start_ms)).clip(0, n - 1)
    counts = np.bincount(slot, minlength=n)
    kept = counts > 0
    mean_t = np.bincount(slot, weights=t.astype(np.float64), minlength=n)[kept] / counts[kept]
    mean_v = np.bincount(slot, weights=v, minlength=n)[kept] / counts[kept]
    return {"t": [int(x) for x in mean_t], "v": [float(x) for x in mean_v]}


async def history(request: Request) -> Response:
    services = services_of(request)
    now_ms = services.clock_ms()
    end_ms = _time(request, "end", now_ms + 1)
    start_ms = _time(request, "start", end_ms - DAY_MS)
    if end_ms <= start_ms:
        raise BadParameter("end", "must be after start")
    n = _max_points(request)
    found = await services.monitoring.history(start_ms, end_ms, _metrics(request))
    monitor = services.monitor
    latest = monitor.latest if monitor is not None else None
    body = {
        "start": start_ms,
        "end": end_ms,
        "metrics": {m: bucketed(p, start_ms, end_ms, n) for m, p in found.items()},
        "rules": [
            {"metric": r.metric, "warning": r.warning, "critical": r.critical}
            for r in (monitor.rules if monitor is not None else ())
        ],
        "levels": await services.monitoring.levels(),
        "latest": None if latest is None else {"at": latest.at_ms, "values": latest.values},
        "events": [e.to_json() for e in await services.monitoring.events(start_ms)],
    }
    return respond(request, body)


async def day_report(request: Request) -> Response:
    """``GET /api/monitor/report?day=YYYY-MM-DD``: one UTC day summarised (default: the
    last finished day)."""
    services = services_of(request)
    today_ms = services.clock_ms() // DAY_MS * DAY_MS
    raw = request.query_params.get("day")
    if raw is None or raw == "":
        day_ms = today_ms - DAY_MS
    else:
        if not _DAY.fullmatch(raw):
            raise BadParameter("day", f"{raw[:20]!r} is not a UTC day like 2025-11-14")
        day_ms = parse_time("day", raw) // DAY_MS * DAY_MS
        if day_ms > today_ms:
            raise BadParameter("day", f"{raw} has not begun yet")
    return respond(request, await daily_report(services.monitoring, day_ms))


def routes() -> list[Route]:
    return [
        Route("/api/monitor", history, methods=["GET"]),
        Route("/api/monitor/report", day_report, methods=["GET"]),
    ]
