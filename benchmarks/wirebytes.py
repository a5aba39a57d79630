"""(c) Bytes per sample on the wire: the same samples in each format and encoding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.context import Bench, chart_params, iso
from benchmarks.dashboard import samples_in
from benchmarks.plan import SITE
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import MSGPACK, Fetched, fetch

ENCODINGS = ("identity", "zstd", "br", "gzip")
PAGE_SIZE = 500000  # one page holds the whole range
COLUMNAR_ZSTD_GOAL = 1.5  # bytes per sample
FIVE_MIN = "columnar MessagePack, interval=5min"
GOAL_ROWS = {("columnar MessagePack", "zstd"), (FIVE_MIN, "zstd")}


@dataclass(frozen=True)
class Format:
    label: str
    path: str
    params: dict[str, str | int]
    accept: str


async def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    names = bench.pick(plan.wire_points)
    start_ms, end_ms = bench.window(plan.wire_days)
    label = f"(c) wire, {len(names)} pts × {plan.wire_days} d raw"
    formats = _formats(names, start_ms, end_ms)
    sizes, counts = await asyncio.wait_for(_measure(bench, formats), plan.wire_timeout_s)
    samples = counts[formats[0].label]
    report.add(rows(label, sizes, counts))
    mismatched = {k: v for k, v in counts.items() if v != samples and k != FIVE_MIN}
    report.notes.append(
        f"(c) {samples:,} samples ({len(names)} points of {SITE}, 5-minute reports, "
        f"{iso(start_ms)} – {iso(end_ms)}), read once to warm the cache, then fetched in "
        "each format with `Accept-Encoding` set to one encoding; bytes are counted raw off "
        "the socket (httpx `aiter_raw`), body only, headers excluded. ACE shapes use the "
        "drop-in `/api/sites/{site}/timeseries/paginated?point_names=…&raw_data=true`, "
        "columnar ones `/api/timeseries?interval=raw&layout=columnar`. Raw times carry the "
        "upstream's jitter (each report lands 30–50 s into its 5-minute sweep, to the ms); "
        f"the `interval=5min` row is the same range as 5-minute means ({counts[FIVE_MIN]:,} "
        "buckets, per bucket), on a regular grid."
        + (f" Sample counts differed: {mismatched}." if mismatched else "")
    )


def _formats(names: Sequence[str], start_ms: int, end_ms: int) -> list[Format]:
    ace: dict[str, str | int] = {
        "start_time": iso(start_ms),
        "end_time": iso(end_ms),
        "page_size": PAGE_SIZE,
        "raw_data": "true",
        "point_names": ",".join(names),
    }
    chart = chart_params(names, start_ms, end_ms, interval="raw", layout="columnar")
    five_min = chart_params(names, start_ms, end_ms, interval="5min", layout="columnar")
    ace_path = f"/api/sites/{SITE}/timeseries/paginated"
    return [
        Format("ACE JSON", ace_path, ace, "application/json"),
        Format("ACE MessagePack (same object)", ace_path, ace, MSGPACK),
        Format("columnar JSON", "/api/timeseries", chart, "application/json"),
        Format("columnar MessagePack", "/api/timeseries", chart, MSGPACK),
        Format(FIVE_MIN, "/api/timeseries", five_min, MSGPACK),
    ]


async def _measure(
    bench: Bench, formats: Sequence[Format]
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    warm = await _get(bench, formats[-1], "identity")
    warm.check("warming the wire scenario")
    sizes: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    for f in formats:
        for encoding in ENCODINGS:
            got = await _get(bench, f, encoding)
            got.check(f"{f.label} {encoding}")
            sizes[(f.label, encoding)] = got.wire_bytes
            if encoding == "identity":
                counts[f.label] = _count(f, got)
    return sizes, counts


async def _get(bench: Bench, f: Format, encoding: str) -> Fetched:
    headers = {"Accept": f.accept, "Accept-Encoding": encoding}
    return await fetch(bench.http, bench.gateway_url + f.path, params=f.params, headers=headers)


def _count(f: Format, got: Fetched) -> int:
    if f.path.startswith("/api/timeseries"):
        return samples_in(got)
    body = got.decoded()
    if not isinstance(body, dict) or body.get("has_more"):
        raise RuntimeError(f"{f.label}: expected one whole page")
    return len(body["point_samples"])


def rows(label: str, sizes: dict[tuple[str, str], int], counts: dict[str, int]) -> list[Row]:
    base = sizes[("ACE JSON", "identity")] / counts["ACE JSON"]
    out: list[Row] = []
    for (fmt, encoding), size in sizes.items():
        per_sample = size / max(1, counts[fmt])
        goal = met = ""
        if (fmt, encoding) in GOAL_ROWS:
            goal = f"≤ {COLUMNAR_ZSTD_GOAL:g} B/sample"
            met = verdict(per_sample <= COLUMNAR_ZSTD_GOAL)
        out.append(
            Row(
                label,
                f"{fmt}, {encoding}: B/sample",
                f"{per_sample:,.2f} ({size:,} B)",
                f"{base:,.1f}",
                ratio(base, per_sample),
                goal,
                met,
            )
        )
    return out
