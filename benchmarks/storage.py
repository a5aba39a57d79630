"""(g) Storage cost of keeping upstream's microseconds: chunk bytes per sample, a day
of the demo campus encoded without them (chunk format 1) and with them (format 2)."""

from __future__ import annotations

import time

import httpx

from benchmarks.report import Report, Row
from tsgate.core.codec import encode_series
from tsgate.core.model import Series, concat
from tsgate.upstream.ace import AceClient
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import parse_time

SITE = "demo_campus"
DAY = ("2025-10-01T00:00:00", "2025-10-02T00:00:00")


async def run(report: Report) -> None:
    started = time.monotonic()
    series = await _demo_day()
    samples = sum(len(s) for s in series)
    with_us = sum(len(encode_series(s)) for s in series)
    without = sum(len(encode_series(Series(s.name, s.t_ms, s.v))) for s in series)
    label = f"(g) storage, {SITE} × 1 d ({len(series):,} chunks)"
    report.add(
        [
            Row(label, "chunk B/sample, format 1 (ms only, as before)", _per(without, samples)),
            Row(label, "chunk B/sample, format 2 (µs kept)", _per(with_us, samples)),
            Row(label, "extra for µs", f"+{(with_us - without) / samples:.2f} B/sample"),
        ]
    )
    report.notes.append(
        f"(g) {samples:,} raw samples of every collecting point of {SITE} for {DAY[0][:10]}, "
        "read from the in-process simulator with tsgate's ACE client (times parsed to ms "
        "plus the sub-millisecond part), one chunk per point encoded by "
        "`tsgate.core.codec.encode_series` with and without the µs column; sums of "
        f"chunk sizes, header included ({time.monotonic() - started:.0f} s)."
    )


def _per(size: int, samples: int) -> str:
    return f"{size / samples:.2f} ({size:,} B)"


async def _demo_day() -> list[Series]:
    sim = create_simulator(seed=1)
    client = AceClient("http://simulator/api", transport=httpx.ASGITransport(app=sim))
    start_ms, end_ms = parse_time("start", DAY[0]), parse_time("end", DAY[1])
    pieces: dict[str, list[Series]] = {}
    try:
        async for page in client.site_pages(
            SITE, start_ms, end_ms, token="bench", raw=True, page_size=500000
        ):
            for name, part in page.items():
                pieces.setdefault(name, []).append(part)
    finally:
        await client.aclose()
    return [concat(name, parts) for name, parts in pieces.items()]
