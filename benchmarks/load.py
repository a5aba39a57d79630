"""(e/f) A cached small query under load: many keep-alive connections on loopback.

The load generator is ``wrk`` when installed (``benchmarks.native``, ``make wrk``), else
a minimal HTTP/1.1 client on asyncio streams: httpx costs more CPU per request than the
server does, and client and server share the same cores (so each row reports the load
generator's own CPU per request beside the server's). The
baseline is the framework floor (``benchmarks.floor``): the same server stack answering
the same bytes with no work at all, loaded by the same client in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import msgspec

from benchmarks import native, procs
from benchmarks.context import Bench, chart_params, fmt_ms
from benchmarks.floor import Answer
from benchmarks.plan import Plan
from benchmarks.procs import tree_cpu_seconds
from benchmarks.report import Report, Row, ratio, verdict
from benchmarks.wire import fetch

# tsgate's time per cached answer at most 1.4 times the framework floor's: the gateway's own
# work (auth scope, rate limit, response cache, metrics, stats) costs under half of HTTP's
FLOOR_SHARE_GOAL = 0.7
WARMUPS = 3
# the load request's headers besides Host, the same for both load generators
LOAD_HEADERS = (("Accept", "application/json"), ("Connection", "keep-alive"))
PACED_CONNECTIONS = 64  # the open-loop load's connections: enough for its rate
# headers that belong to one exchange, not to the answer the floor repeats
_PER_EXCHANGE = frozenset({"date", "server", "content-length", "content-type", "x-request-id"})


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
    requests: int  # answered
    p50_s: float
    p99_s: float
    errors: dict[str, int]
    elapsed_s: float
    server_cpu_s: float | None
    client_cpu_s: float
    cache: str
    client: str  # the load generator: "wrk" or "asyncio"

    @classmethod
    def of(
        cls,
        tally: Tally,
        elapsed_s: float,
        server_cpu_s: float | None,
        client_cpu_s: float,
        cache: str,
    ) -> Outcome:
        """The Python client's outcome, from its tally of every request."""
        p50, p99 = _percentiles(tally.latencies_s)
        return cls(
            len(tally.latencies_s), p50, p99, dict(tally.errors), elapsed_s, server_cpu_s,
            client_cpu_s, cache, "asyncio",
        )  # fmt: skip

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_per_request_us(self) -> float:
        return (self.server_cpu_s or 0.0) / self.requests * 1e6 if self.requests else 0.0

    @property
    def client_cpu_per_request_us(self) -> float:
        return self.client_cpu_s / self.requests * 1e6 if self.requests else 0.0

    @property
    def client_share(self) -> float:
        """The load generator's CPU, in % of one core."""
        return self.client_cpu_s / self.elapsed_s * 100 if self.elapsed_s > 0 else 0.0


async def run(bench: Bench, report: Report, server_pid: int, workdir: Path) -> None:
    plan = bench.plan
    name = bench.pick(1)[0]
    start_ms, end_ms = bench.window(1)
    query = urlencode(chart_params([name], start_ms, end_ms))
    cache = await _warm(bench, query)
    answer_path = workdir / "floor-answer.msgpack"
    answer_path.write_bytes(msgspec.msgpack.encode(await _capture(bench.gateway_url, query)))
    with procs.floor(workdir, answer_path) as floor:
        for tag, connections, budget in (
            ("(e)", plan.load_connections, plan.load_requests),
            ("(f)", plan.stress_connections, plan.stress_requests),
        ):
            label = f"{tag} cached 1 pt × 1 d, {connections:,} connections"
            base = await measure(
                floor.base_url, query, floor.proc.pid, "–", connections, budget, plan
            )
            outcome = await measure(
                bench.gateway_url, query, server_pid, cache, connections, budget, plan
            )
            report.add(rows(label, outcome, base, budget, plan.load_time_limit_s))
            report.notes.append(_note(outcome, base, connections))


async def _warm(bench: Bench, query: str) -> str:
    url = f"{bench.gateway_url}/api/timeseries?{query}"
    got = None
    for _ in range(WARMUPS):
        got = await fetch(bench.http, url)
        got.check("warming the small query")
    assert got is not None
    return got.header("X-Cache-Status")


def _request(base_url: str, query: str) -> tuple[str, int, bytes]:
    split = urlsplit(base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    fields = "".join(f"{k}: {v}\r\n" for k, v in LOAD_HEADERS)
    request = (
        f"GET /api/timeseries?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n{fields}\r\n"
    ).encode()
    return host, port, request


async def _capture(base_url: str, query: str) -> Answer:
    """tsgate's answer to the load request, exactly as the load client gets it."""
    host, port, request = _request(base_url, query)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        _, headers = await _head(reader)
        body = await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()
    kept = {k: v for k, v in headers.items() if k not in _PER_EXCHANGE}
    return Answer(body, headers.get("content-type", "application/json"), kept)


async def measure(
    base_url: str,
    query: str,
    server_pid: int,
    cache: str,
    connections: int,
    budget: int,
    plan: Plan,
) -> Outcome:
    """The cached load on ``connections`` keep-alive connections: with ``wrk`` for
    ``plan.native_load_s`` when it is installed, else ``budget`` requests of the Python
    client."""
    wrk = native.available()
    if wrk is None:
        return await _load(base_url, query, server_pid, cache, connections, budget, plan)
    return await native_load(wrk, base_url, query, server_pid, cache, connections,
                             plan.native_load_s)  # fmt: skip


async def native_load(
    wrk: str,
    base_url: str,
    query: str,
    server_pid: int,
    cache: str,
    connections: int,
    duration_s: float,
    until: asyncio.Event | None = None,
) -> Outcome:
    """``wrk``'s load for ``duration_s`` or until ``until`` is set."""
    cpu0 = tree_cpu_seconds(server_pid)
    summary, client_cpu = await native.run(
        wrk, f"{base_url}/api/timeseries?{query}", dict(LOAD_HEADERS), connections,
        duration_s, until,
    )  # fmt: skip
    cpu1 = tree_cpu_seconds(server_pid)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    # the CPU of servers and wrk over wrk's whole life (start-up and shutdown too), over
    # the requests of its measured duration: slight overestimates, never underestimates
    return Outcome(
        summary.requests, summary.p50_us / 1e6, summary.p99_us / 1e6, summary.errors,
        summary.duration_us / 1e6, server_cpu, client_cpu, cache, "wrk",
    )  # fmt: skip


async def _load(
    base_url: str,
    query: str,
    server_pid: int,
    cache: str,
    connections: int,
    budget: int,
    plan: Plan,
) -> Outcome:
    host, port, request = _request(base_url, query)
    tally = Tally(budget)
    cpu0, client0 = tree_cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    deadline = started + plan.load_time_limit_s
    workers = [_connection(host, port, request, tally, deadline) for _ in range(connections)]
    await asyncio.wait_for(asyncio.gather(*workers), plan.load_time_limit_s + 10)
    elapsed_s = time.perf_counter() - started
    cpu1 = tree_cpu_seconds(server_pid)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Outcome.of(tally, elapsed_s, server_cpu, time.process_time() - client0, cache)


async def _connection(host: str, port: int, request: bytes, tally: Tally, deadline: float) -> None:
    async def now_if_left() -> float | None:
        return time.perf_counter() if time.perf_counter() < deadline and tally.take() else None

    await _requests(host, port, request, tally, now_if_left)


async def _requests(
    host: str,
    port: int,
    request: bytes,
    tally: Tally,
    next_from: Callable[[], Awaitable[float | None]],
) -> None:
    """One connection sending ``request`` each time ``next_from`` gives the time its
    latency counts from (``None``: no more), each answer read whole and tallied."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        tally.error(type(exc).__name__)
        return
    try:
        while (since := await next_from()) is not None:
            writer.write(request)
            status = await _response(reader)
            tally.latencies_s.append(time.perf_counter() - since)
            if status != 200:
                tally.error(f"HTTP {status}")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        tally.error(type(exc).__name__)
    finally:
        writer.close()


async def paced(
    base_url: str,
    query: str,
    server_pid: int,
    rate_per_s: float,
    over: asyncio.Event,
    limit_s: float,
    connections: int = PACED_CONNECTIONS,
) -> Outcome:
    """An open-loop load: a request falls due every ``1 / rate_per_s`` s and goes out on
    the next free connection, until ``over`` is set (or ``limit_s``). Each latency counts
    from when its request fell due, so a server that stalls is charged for every request
    that waited behind the stall, not only the one in flight (no coordinated omission)."""
    host, port, request = _request(base_url, query)
    tally = Tally(10**9)
    due: asyncio.Queue[float | None] = asyncio.Queue()

    cpu0, client0 = tree_cpu_seconds(server_pid), time.process_time()
    workers = [
        asyncio.ensure_future(_requests(host, port, request, tally, due.get))
        for _ in range(connections)
    ]
    started = time.perf_counter()
    sent = 0
    while not over.is_set() and (now := time.perf_counter()) - started < limit_s:
        while started + sent / rate_per_s <= now:
            due.put_nowait(started + sent / rate_per_s)
            sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate_per_s - time.perf_counter()))
    elapsed_s = time.perf_counter() - started
    for _ in workers:
        due.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*workers), 60)
    cpu1 = tree_cpu_seconds(server_pid)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    unanswered = sent - len(tally.latencies_s) - sum(tally.errors.values())
    if unanswered > 0:
        tally.errors["never sent"] = unanswered  # every connection failed before
    return Outcome.of(tally, elapsed_s, server_cpu, time.process_time() - client0, "–")


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A response's status and headers (lower-cased names)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = (ln.partition(":") for ln in lines[1:] if ln)
    return status, {k.strip().lower(): v.strip() for k, _, v in fields}


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status. The body is read and dropped."""
    status, headers = await _head(reader)
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


def rows(label: str, o: Outcome, base: Outcome, budget: int, limit_s: float) -> list[Row]:
    rps, base_rps = o.rps, base.rps
    errors = o.error_count
    # rates compare as time per request, so the ratio reads like every other row
    share = rps / base_rps if base_rps > 0 else 0.0
    done = (
        f"{o.requests:,} in {o.elapsed_s:.1f} s, wrk" if o.client == "wrk"
        else f"{o.requests:,} of {budget:,} in {o.elapsed_s:.1f} s, limit {limit_s:g} s"
    )  # fmt: skip
    return [
        Row(label, f"requests/s ({done}); baseline: framework floor", f"{rps:,.0f}",
            f"{base_rps:,.0f}", ratio(rps, base_rps), f"≥ {FLOOR_SHARE_GOAL:g}×",
            verdict(share >= FLOOR_SHARE_GOAL and errors == 0)),
        Row(label, "latency p50 / p99", latency(o), latency(base)),
        Row(label, "errors; cache status", f"{errors} {o.errors or ''}; {o.cache}",
            f"{base.error_count}", goal="0 errors", met=verdict(errors == 0)),
        Row(label, "server CPU per request", f"{o.cpu_per_request_us:,.0f} µs",
            f"{base.cpu_per_request_us:,.0f} µs",
            ratio(base.cpu_per_request_us, o.cpu_per_request_us)),
        Row(label, f"load client ({o.client}) CPU per request; % of one core",
            client_cpu(o), client_cpu(base)),
    ]  # fmt: skip


def latency(o: Outcome) -> str:
    return f"{fmt_ms(o.p50_s)} / {fmt_ms(o.p99_s)}"


def client_cpu(o: Outcome) -> str:
    return f"{o.client_cpu_per_request_us:,.1f} µs; {o.client_share:.0f} %"


def _percentiles(latencies_s: Sequence[float]) -> tuple[float, float]:
    if len(latencies_s) < 2:
        only = latencies_s[0] if latencies_s else 0.0
        return only, only
    cuts = statistics.quantiles(latencies_s, n=100)
    return cuts[49], cuts[98]


def _note(o: Outcome, base: Outcome, connections: int) -> str:
    share = o.client_share
    server = (
        f"{o.server_cpu_s / o.elapsed_s * 100:.0f} %"
        if o.server_cpu_s is not None and o.elapsed_s
        else "unknown"
    )
    client = (
        "one `wrk` thread (Debian's package, installed by `scripts/wrk.sh`; its latency "
        "percentiles, errors and non-2xx counts)" if o.client == "wrk"
        else "one asyncio process (a minimal HTTP/1.1 client, not httpx, whose own CPU cost "
        "would be the limit; `wrk` is not installed, or `BENCH_LOAD_CLIENT=asyncio`)"
    )  # fmt: skip
    return (
        f"(e/f) {connections:,} keep-alive connections from {client} on the same "
        f"cores as the server: the client used {share:.0f} % of a core, the server process "
        f"{server} (100 % = one core; tsgate serves from one process). The query is the "
        "default chart of one point over one settled day, after warm-up requests. The "
        "baseline is the framework floor (`benchmarks/floor.py`): Starlette on uvicorn, "
        "as `tsgate serve` runs them, answering the same body and headers with no work, "
        f"loaded the same way just before ({base.rps:,.0f} requests/s); requests/s compare "
        "as time per request."
    )
