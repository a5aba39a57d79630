"""The simulator read directly (no tsgate in between), and Prometheus semantics by hand.

The reference side of the Prometheus API tests: samples come from the simulator's own
per-point endpoint, and windows are evaluated with plain loops as the Prometheus
documentation defines them (a range ``r`` at ``t`` holds the samples in ``(t - r, t]``;
a bare selector takes the newest sample in ``(t - lookback, t]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import quote

import httpx
import numpy as np

from tsgate.upstream import building
from tsgate.upstream.simulator import Simulator
from tsgate.wire.ace import format_time, parse_times


async def samples(sim: Simulator, name: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
    """``(ms, value)`` of one point in ``[start_ms, end_ms)``, from the simulator itself."""
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        r = await client.get(
            f"/api/points/{quote(name, safe='')}/timeseries",
            params={"start_time": format_time(start_ms), "end_time": format_time(end_ms)},
            headers={"Authorization": "Bearer t"},
        )
    r.raise_for_status()
    rows = r.json()["point_samples"]
    times = parse_times([row["time"] for row in rows]).tolist()
    return sorted(zip(times, (float(row["value"]) for row in rows), strict=True))


def window(rows: Sequence[tuple[int, float]], t: int, range_ms: int) -> list[float]:
    return [v for ts, v in rows if t - range_ms < ts <= t and not math.isnan(v)]


def over_time(func: str, values: list[float]) -> float | None:
    if not values:
        return None
    if func == "avg":
        return sum(values) / len(values)
    if func == "sum":
        return sum(values)
    if func == "count":
        return float(len(values))
    if func == "min":
        return min(values)
    if func == "max":
        return max(values)
    if func == "last":
        return values[-1]
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(variance) if func == "stddev" else variance


def steps(start_ms: int, end_ms: int, step_ms: int) -> list[int]:
    return list(range(start_ms, end_ms + 1, step_ms))


def as_map(values: list[list[object]]) -> dict[int, float]:
    """A Prometheus ``values`` list as ``{ms: value}``."""
    return {round(float(str(t)) * 1000): float(str(v)) for t, v in values}


def close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-9, atol=1e-9))


# the gap rule (chart bands, /api/quality), restated for the simulator's points: a point
# reporting on change (its value holds) may be silent for 1.5 hourly heartbeats, a sampled
# one for three 5-minute reporting intervals, and so may a point whose value holds but
# which the simulator polls every 5 minutes (its regular cadence is observed)
HELD_GAP_MS = 90 * 60_000
SAMPLED_GAP_MS = 15 * 60_000
HELD_KINDS = frozenset({"fan_status", "occupancy", "ahu_mode", "occ_schedule", "compressor"})
# the simulator's points reporting on change: at each whole hour, and on a change beyond
# their deadband (the other points report at every 5-minute sweep)
COV_KINDS = frozenset(building.DEADBANDS)


def sim_gap_ms(kind: str, mode: str = "sampled", *, collects: bool = True) -> int:
    """The gap limit of a simulator point of ``kind`` (an analog point in ``mode``): a
    polled point whose value holds is judged by its observed cadence once it reports
    (``collects``), else by the heartbeat rule."""
    if kind not in HELD_KINDS and mode != "cov":
        return SAMPLED_GAP_MS
    return SAMPLED_GAP_MS if collects and kind not in COV_KINDS else HELD_GAP_MS


def walk_gaps(t_ms: Sequence[int], span: tuple[int, int], limit_ms: int) -> list[tuple[int, int]]:
    """Every silence longer than ``limit_ms`` in ``span`` (``[start, until)``), found by
    walking the sample times one by one: from the sample before it (or ``start``) to the
    sample after it (or ``until``)."""
    start, until = span
    out: list[tuple[int, int]] = []
    previous = start
    for t in [*t_ms, until]:
        if t - previous > limit_ms:
            out.append((previous, int(t)))
        previous = int(t)
    return out
