"""A bounded loopback load test against a real server: 1,000 concurrent clients mixing
cached charts, drop-in pages, cold queries and job submissions, beside 200 slow clients
(100 that never finish their headers, 100 that never read their answers)."""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_connections import _peak_rss_mib, tsgate
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.slow
CLIENTS = 1_000
SLOW = 200
REQUESTS_PER_CLIENT = 3
RSS_BOUND_MIB = 1_536  # measured: 990 MiB peak, most of it the 100 unread 7 MB pages
TROUBLE: collections.Counter[str] = collections.Counter()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _plan(i: int, names: list[str]) -> tuple[str, str, dict[str, object]]:
    """What client ``i`` asks: (method, path, params-or-body)."""
    kind = i % 10
    if kind < 5:  # a cached chart (the dashboard everyone has open)
        return (
            "GET",
            "/api/timeseries",
            {
                "site": "elm_school",
                "points": ",".join(names[:3]),
                "start": "2025-10-01",
                "end": "2025-10-08",
                "max_points": 500,
            },
        )
    if kind < 7:  # a drop-in page
        return (
            "GET",
            "/api/sites/elm_school/timeseries/paginated",
            {
                "start_time": "2025-10-01T00:00:00",
                "end_time": "2025-10-02T00:00:00",
                "page_size": 1000,
                "raw_data": "true",
            },
        )
    if kind < 9:  # a cold query: a point and day nobody asked for yet
        day = 1 + i % 28
        return (
            "GET",
            "/api/timeseries",
            {
                "site": "elm_school",
                "points": names[i % len(names)],
                "start": f"2025-09-{day:02d}",
                "end": f"2025-09-{day:02d}T06:00:00",
            },
        )
    return (
        "POST",
        "/api/jobs",
        {  # a job submission
            "kind": "export",
            "format": "csv",
            "site": "elm_school",
            "points": [names[i % len(names)]],
            "start": "2025-08-01T00:00:00",
            "end": "2025-08-02T00:00:00",
        },
    )


def _params(what: dict[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in what.items()}


async def _client(
    api: httpx.AsyncClient, i: int, names: list[str], statuses: collections.Counter[int | str]
) -> None:
    method, path, what = _plan(i, names)
    headers = {"Authorization": f"Bearer tenant-{i % 50}"}
    for _ in range(REQUESTS_PER_CLIENT):
        try:
            if method == "GET":
                answer = await api.get(path, params=_params(what), headers=headers)
            else:
                answer = await api.post(path, json=what, headers=headers)
        except httpx.TransportError as exc:
            statuses[type(exc).__name__] += 1  # a dropped connection: counted, and it fails
            continue
        statuses[answer.status_code] += 1
        if answer.status_code >= 500:
            TROUBLE[f"{answer.status_code} {path}: {answer.json().get('detail', '')[:120]}"] += 1


async def _burst(url: str, names: list[str]) -> None:
    statuses: collections.Counter[int | str] = collections.Counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as api:
        await asyncio.gather(*(_client(api, i, names, statuses) for i in range(0, 200, 3)))
    assert all(isinstance(s, int) and s < 500 for s in statuses), statuses


async def _slow_clients(port: int, hold_s: float) -> list[socket.socket]:
    """100 connections that never finish their headers, 100 that never read."""
    held = []
    for i in range(SLOW):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
        if i % 2:
            s.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        else:
            s.send(
                b"GET /api/sites/elm_school/timeseries/paginated?start_time=2025-10-01T00:00:00"
                b"&end_time=2025-10-08T00:00:00&page_size=50000&raw_data=true HTTP/1.1\r\n"
                b"Host: x\r\nAuthorization: Bearer slow\r\n\r\n"
            )  # and never reads the ~7 MB answer
        held.append(s)
    await asyncio.sleep(hold_s)
    return held


HEADER_DEADLINE_S = 20.0


# the server under its own load, not beside another test worker's: on 2 shared cores a
# neighbour slowed the run from 19 s to 51 s and some connections were dropped
@pytest.mark.alone
def test_a_thousand_clients_beside_two_hundred_slow_ones(tmp_path: Path) -> None:
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting[:60]]
    # a header deadline the slow clients pass but a starved real client never does: on a
    # loaded 2-core runner the server's loop can be busy for seconds while connections
    # queue, and 5 s from connect would drop clients that did send their headers; on a
    # runner where the burst took 55 s instead of 22 s, one of the 1,000 client tasks
    # (sharing a core) sent its request more than 12 s after it connected
    env = {"TSGATE_RATE_LIMIT_PER_MIN": "0", "TSGATE_HEADER_TIMEOUT_S": str(HEADER_DEADLINE_S)}
    with tsgate(tmp_path, **env) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        with httpx.Client(base_url=url, timeout=60, headers={"X-ACE-Token": "w"}) as warm:
            # the dashboard everyone has open, and the week the pages come from
            warm.get("/api/timeseries", params=_params(_plan(0, names)[2]))
            week = {**_plan(5, names)[2], "end_time": "2025-10-08T00:00:00", "page_size": 50000}
            warm.get(_plan(5, names)[1], params=_params(week))
        asyncio.run(_burst(url, names))  # the database pool and caches reach their size
        time.sleep(1.0)
        fds_before, rss_before = _fds(proc.pid), _rss_mib(proc.pid)

        async def run() -> tuple[collections.Counter[int | str], float, list[socket.socket]]:
            statuses: collections.Counter[int | str] = collections.Counter()
            # a connection per request: a client this starved (1,000 tasks on a shared
            # core) reads answers late and would reuse connections the server's keep-alive
            # timeout has just closed (a race of HTTP/1.1 clients, not a server fault)
            limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
            slow = asyncio.create_task(_slow_clients(port, hold_s=2.0))
            started = time.monotonic()
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as api:
                await asyncio.gather(*(_client(api, i, names, statuses) for i in range(CLIENTS)))
            took_s = time.monotonic() - started
            return statuses, took_s, await slow

        statuses, took_s, held = asyncio.run(run())
        peak_mib = _peak_rss_mib(proc.pid)
        for s in held:
            s.close()
        time.sleep(HEADER_DEADLINE_S + 1.0)  # past the header deadline; closed sockets reaped
        fds_after, rss_after = _fds(proc.pid), _rss_mib(proc.pid)
        alive = proc.poll() is None
    total = CLIENTS * REQUESTS_PER_CLIENT
    print(  # the figures of the run, for the record (pytest -s shows them)
        f"\n{total} requests from {CLIENTS} clients beside {SLOW} slow ones in {took_s:.1f} s: "
        f"{dict(statuses)}; RSS {rss_before:.0f} -> peak {peak_mib:.0f} -> {rss_after:.0f} MiB; "
        f"fds {fds_before} -> {fds_after}"
    )
    print(TROUBLE.most_common(10))
    print((tmp_path / "server.log").read_text()[-2000:])
    assert alive
    assert sum(statuses.values()) == total
    assert all(isinstance(s, int) and s < 500 for s in statuses), statuses
    assert peak_mib < RSS_BOUND_MIB, peak_mib
    assert fds_after <= fds_before + 5, (fds_before, fds_after)
