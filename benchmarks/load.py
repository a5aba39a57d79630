"""(e) A cached small query under load: many keep-alive connections on loopback.

The load generator is a minimal HTTP/1.1 client on asyncio streams: httpx costs more
CPU per request than the server does, and client and server share the same cores.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from benchmarks.context import Bench, chart_params, fmt_ms
from benchmarks.procs import cpu_seconds
from benchmarks.report import Report, Row, verdict
from benchmarks.wire import fetch

RPS_GOAL = 5000.0
WARMUPS = 3


@dataclass
class Tally:
    budget: int  # requests not yet started
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def take(self) -> bool:
        if self.budget <= 0:
            return False
        self.budget -= 1
        return True

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


@dataclass(frozen=True)
class Outcome:
    tally: Tally
    elapsed_s: float
    server_cpu_s: float | None
    client_cpu_s: float
    cache: str


async def run(bench: Bench, report: Report, server_pid: int) -> None:
    plan = bench.plan
    name = bench.pick(1)[0]
    start_ms, end_ms = bench.window(1)
    query = urlencode(chart_params([name], start_ms, end_ms))
    cache = await _warm(bench, query)
    for tag, connections, budget in (
        ("(e)", plan.load_connections, plan.load_requests),
        ("(f)", plan.stress_connections, plan.stress_requests),
    ):
        label = f"{tag} cached 1 pt × 1 d, {connections:,} connections"
        outcome = await _load(bench, query, server_pid, cache, connections, budget)
        report.add(rows(label, outcome, budget, plan.load_time_limit_s))
        report.notes.append(_note(outcome, connections))


async def _warm(bench: Bench, query: str) -> str:
    url = f"{bench.gateway_url}/api/timeseries?{query}"
    got = None
    for _ in range(WARMUPS):
        got = await fetch(bench.http, url)
        got.check("warming the small query")
    assert got is not None
    return got.header("X-Cache-Status")


async def _load(
    bench: Bench, query: str, server_pid: int, cache: str, connections: int, budget: int
) -> Outcome:
    plan = bench.plan
    split = urlsplit(bench.gateway_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    request = (
        f"GET /api/timeseries?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: application/json\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    tally = Tally(budget)
    cpu0, client0 = cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    deadline = started + plan.load_time_limit_s
    workers = [_connection(host, port, request, tally, deadline) for _ in range(connections)]
    await asyncio.wait_for(asyncio.gather(*workers), plan.load_time_limit_s + 10)
    elapsed_s = time.perf_counter() - started
    cpu1 = cpu_seconds(server_pid)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Outcome(tally, elapsed_s, server_cpu, time.process_time() - client0, cache)


async def _connection(host: str, port: int, request: bytes, tally: Tally, deadline: float) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        tally.error(type(exc).__name__)
        return
    try:
        while time.perf_counter() < deadline and tally.take():
            sent = time.perf_counter()
            writer.write(request)
            status = await _response(reader)
            tally.latencies_s.append(time.perf_counter() - sent)
            if status != 200:
                tally.error(f"HTTP {status}")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        tally.error(type(exc).__name__)
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status. The body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        await _chunked(reader)
    return status


async def _chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return


def rows(label: str, o: Outcome, budget: int, limit_s: float) -> list[Row]:
    done = len(o.tally.latencies_s)
    rps = done / o.elapsed_s if o.elapsed_s > 0 else 0.0
    errors = sum(o.tally.errors.values())
    p50, p99 = _percentiles(o.tally.latencies_s)
    server_us = (o.server_cpu_s or 0.0) / done * 1e6 if done else 0.0
    return [
        Row(label, f"requests/s ({done:,} of {budget:,} in {o.elapsed_s:.1f} s, limit "
            f"{limit_s:g} s)", f"{rps:,.0f}", goal=f"≥ {RPS_GOAL:,.0f}",
            met=verdict(rps >= RPS_GOAL and errors == 0)),
        Row(label, "latency p50 / p99", f"{fmt_ms(p50)} / {fmt_ms(p99)}"),
        Row(label, "errors; cache status", f"{errors} {dict(o.tally.errors) or ''}; {o.cache}",
            goal="0 errors", met=verdict(errors == 0)),
        Row(label, "server CPU per request", f"{server_us:,.0f} µs"),
    ]  # fmt: skip


def _percentiles(latencies_s: Sequence[float]) -> tuple[float, float]:
    if len(latencies_s) < 2:
        only = latencies_s[0] if latencies_s else 0.0
        return only, only
    cuts = statistics.quantiles(latencies_s, n=100)
    return cuts[49], cuts[98]


def _note(o: Outcome, connections: int) -> str:
    share = o.client_cpu_s / o.elapsed_s * 100 if o.elapsed_s else 0.0
    server = (
        f"{o.server_cpu_s / o.elapsed_s * 100:.0f} %"
        if o.server_cpu_s is not None and o.elapsed_s
        else "unknown"
    )
    return (
        f"(e/f) {connections:,} keep-alive connections from one asyncio process (a minimal "
        "HTTP/1.1 client, not httpx, whose own CPU cost would be the limit) on the same "
        f"cores as the server: the client used {share:.0f} % of a core, the server process "
        f"{server} (100 % = one core; tsgate serves from one process). The query is the "
        "default chart of one point over one settled day, after warm-up requests."
    )
