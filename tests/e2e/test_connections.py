"""Hostile connections against real processes: slow header senders, clients that leave
mid-read, and SIGTERM with a long read in flight."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.asgi import free_port
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.slow
TOKEN = {"Authorization": "Bearer t"}


def _wait_up(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + path, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], path: str, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    with open(log or os.devnull, "ab") as err:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsgate", *args, "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc, path)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


@contextlib.contextmanager
def simulator(latency_ms: int) -> Iterator[str]:
    with process(["simulate", "--latency-ms", str(latency_ms)], {}, "/_sim/stats") as (url, _):
        yield url


@contextlib.contextmanager
def tsgate(
    workdir: Path, upstream: str = "sim://?seed=1", **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    conf = {
        "TSGATE_DATABASE_URL": f"sqlite:///{workdir}/t.db",
        "TSGATE_OBJECTS_URL": f"file://{workdir}/objects",
        "TSGATE_UPSTREAM_URL": upstream,
        "TSGATE_LOG_LEVEL": "warning",
        "TSGATE_WORKERS": "1",  # one process: its admission and buffers are what is measured
        **env,
    }
    with process(["serve"], conf, "/api/health", workdir / "server.log") as served:
        yield served


def _upstream_requests(sim_url: str) -> int:
    count: int = httpx.get(f"{sim_url}/_sim/stats").json()["requests"]
    return count


def test_connections_that_never_finish_their_headers_are_closed(tmp_path: Path) -> None:
    with tsgate(tmp_path, TSGATE_HEADER_TIMEOUT_S="2") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        socks = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # never the blank line
            socks.append(s)
        silent = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
        socks.append(silent)
        for _ in range(20):  # one whole request answered, then half of the next
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(10)
            answer = b""
            while not answer.endswith(b"}"):
                answer += s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /api/health HTTP/1.1\r\n")
            socks.append(s)
        started = time.monotonic()
        closed_after: list[float] = []
        for s in socks:
            s.settimeout(10)
            assert s.recv(1024) == b""  # the server closed it
            closed_after.append(time.monotonic() - started)
            s.close()
        # meanwhile, a well-behaved client is served at once
        assert httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    assert max(closed_after) < 4.0, max(closed_after)


def test_a_client_that_leaves_stops_the_upstream_fetch(tmp_path: Path) -> None:
    site = create_simulator(seed=1).sites[0]
    names = [p.name for p in site.collecting[:30]]
    with (
        simulator(latency_ms=100) as sim_url,
        tsgate(
            tmp_path,
            f"{sim_url}/api",
            TSGATE_UPSTREAM_TOKEN="t",
            TSGATE_UPSTREAM_CONCURRENCY="2",
            TSGATE_SITE_STREAM_MIN_POINTS="1000",  # per-point reads: many small requests
        ) as (url, _),
    ):
        params = {"start_time": "2025-01-01T00:00:00", "end_time": "2025-03-01T00:00:00"}
        with pytest.raises(httpx.ReadTimeout):  # the client gives up after half a second
            httpx.post(
                f"{url}/api/points/get_timeseries",
                params=params,
                json={"points": names},
                timeout=httpx.Timeout(10, read=0.5),
            )
        time.sleep(0.5)
        at_leave = _upstream_requests(sim_url)
        time.sleep(2.0)
        later = _upstream_requests(sim_url)
    # 30 points x 2 months = 60 reads at 2 x 10/s would take 3 s; it stops instead
    assert at_leave < 30
    assert later - at_leave <= 2  # at most the reads in flight when it left


def test_sigterm_ends_within_the_shutdown_bound(tmp_path: Path) -> None:
    site = create_simulator(seed=1).sites[0]
    names = [p.name for p in site.collecting[:30]]
    with (
        simulator(latency_ms=500) as sim_url,
        tsgate(
            tmp_path,
            f"{sim_url}/api",
            TSGATE_UPSTREAM_TOKEN="t",
            TSGATE_UPSTREAM_CONCURRENCY="1",
            TSGATE_SITE_STREAM_MIN_POINTS="1000",
            TSGATE_SHUTDOWN_TIMEOUT_S="2",
        ) as (url, proc),
    ):
        # a 30 s read (60 upstream reads, one at a time, 0.5 s each) is in flight
        port = int(url.rsplit(":", 1)[1])
        raw = socket.create_connection(("127.0.0.1", port))
        body = ('{"points": [' + ",".join(f'"{n}"' for n in names) + "]}").encode()
        raw.sendall(
            b"POST /api/points/get_timeseries?start_time=2025-01-01T00:00:00"
            b"&end_time=2025-03-01T00:00:00 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took_s = time.monotonic() - started
        raw.close()
    assert took_s < 2 + 3.0, took_s  # the bound, plus closing the services


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_large_drop_in_answer_streams_in_bounded_memory(tmp_path: Path) -> None:
    site = create_simulator(seed=1).sites[0]
    names = [p.name for p in site.collecting[:150]]
    params = {"start_time": "2025-01-01T00:00:00", "end_time": "2025-01-31T00:00:00"}
    env = {
        "TSGATE_UPSTREAM_TOKEN": "t",
        "TSGATE_INLINE_FETCH_SAMPLES": "2000000",
        # this measures memory; the upstream MiB charged to the caller would be a 429
        "TSGATE_RATE_LIMIT_PER_MIN": "0",
    }
    with tsgate(tmp_path, **env) as (url, proc), httpx.Client(timeout=300) as client:
        # fill the cache through the chart API (a small, downsampled answer)
        chart = client.get(
            f"{url}/api/timeseries",
            params={"site": site.name, "points": ",".join(names), "max_points": 100}
            | {"start": params["start_time"], "end": params["end_time"]},
        )
        assert chart.status_code == 200, chart.text
        warm = _peak_rss_mib(proc.pid)
        # the drop-in answer of the cached samples, streamed, uncompressed, read slowly
        with client.stream(
            "POST",
            f"{url}/api/points/get_timeseries",
            params=params,
            json={"points": names},
            headers={"Accept-Encoding": "identity"},
        ) as answer:
            assert answer.status_code == 200
            received = 0
            for chunk in answer.iter_raw(1 << 20):
                received += len(chunk)
                if received < 8 << 20:
                    time.sleep(0.05)  # a slow reader at first
        after = _peak_rss_mib(proc.pid)
    body_mib = received / 2**20
    assert body_mib > 80, body_mib  # ~650 k samples of ACE JSON
    # built whole, the answer alone needs several times the body (rows, then bytes)
    # (measured: +65 MiB streamed, +631 MiB built whole, for a 190 MiB answer)
    assert after - warm < body_mib / 2, (warm, after, body_mib)


def test_a_served_process_settles_its_heap_and_reports_its_collections(tmp_path: Path) -> None:
    with tsgate(tmp_path) as (url, _):
        for _ in range(3):
            assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
        text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    # what was alive once the services were open is out of the collector's walks
    assert found["tsgate_gc_frozen_objects"] > 10_000
    assert found["tsgate_gc_pause_seconds_count"] >= 1
