"""The benchmarks' native load generator: wrk's summary read back, errors and non-2xx
answers counted, its CPU measured; the Python client when wrk is absent or refused."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

import pytest
from benchmarks import native

from tests.conftest import IN_CI

WRK = shutil.which("wrk")
needs_wrk = pytest.mark.usefixtures("wrk_installed")


@pytest.fixture
def wrk_installed() -> None:
    """wrk, or skip (fail under CI=true, which installs it: `make test` runs `make wrk`)."""
    if WRK is None:
        message = "wrk is not installed (make wrk, or apt-get install wrk)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive HTTP/1.1 server: 200 on /ok with Accept: application/json, else 503
    (or 406 for another Accept)."""
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ", 2)[1]
            status = 200 if path.startswith("/ok") else 503
            if "\r\naccept: application/json\r\n" not in head.lower():
                status = 406
            body = b'{"ok": true}' if status == 200 else b"{}"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _load(
    path: str,
    headers: dict[str, str] | None = None,
    *,
    duration_s: float = 1,
    stop_after_s: float | None = None,
) -> tuple[native.Summary, float]:
    assert WRK is not None
    wanted = {"Accept": "application/json"} if headers is None else headers

    async def go() -> tuple[native.Summary, float]:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        until = None if stop_after_s is None else asyncio.Event()
        if until is not None and stop_after_s is not None:
            asyncio.get_running_loop().call_later(stop_after_s, until.set)
        async with server:
            return await native.run(
                WRK, f"http://127.0.0.1:{port}{path}", wanted, 4, duration_s, until
            )

    return asyncio.run(go())


@needs_wrk
def test_answers_are_counted_with_their_latency_and_wrks_cpu() -> None:
    summary, cpu_s = _load("/ok?points=a")
    assert summary.requests > 0
    assert summary.errors == {}
    assert 0 < summary.p50_us <= summary.p99_us <= summary.max_us
    assert summary.duration_us > 0
    assert cpu_s > 0  # the kernel's account of wrk's own process


@needs_wrk
def test_a_load_stops_when_told_and_still_reports() -> None:
    started = time.monotonic()
    summary, _ = _load("/ok", duration_s=120, stop_after_s=0.5)
    assert time.monotonic() - started < 60  # stopped by the event, not by its duration
    assert summary.requests > 0
    assert summary.errors == {}
    assert summary.duration_us < 60e6


@needs_wrk
def test_every_non_2xx_answer_is_an_error() -> None:
    summary, _ = _load("/bad")
    assert summary.requests > 0
    assert summary.non2xx == summary.requests
    assert summary.status == summary.requests  # 503: wrk's own count agrees
    assert summary.errors["non-2xx"] == summary.requests


@needs_wrk
def test_the_request_carries_the_headers_given() -> None:
    summary, _ = _load("/ok", headers={"Accept": "text/csv"})
    assert summary.requests > 0
    assert summary.non2xx == summary.requests  # 406: the server saw the other header


@needs_wrk
def test_nothing_listening_fails_the_run_with_wrks_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nobody listens once closed
    assert WRK is not None
    with pytest.raises(RuntimeError, match="unable to connect"):
        asyncio.run(native.run(WRK, f"http://127.0.0.1:{port}/ok", {}, 4, 1))


def test_the_summary_line_is_found_among_wrks_report() -> None:
    out = (
        "Running 1s test @ http://127.0.0.1:1/ok\n  1 threads and 4 connections\n"
        '{"requests": 10, "duration_us": 1000000, "p50_us": 90, "p99_us": 400, '
        '"max_us": 900, "connect": 0, "read": 1, "write": 0, "status": 2, "timeout": 3, '
        '"non2xx": 4}\n'
    )
    summary = native.parse(out)
    assert summary.requests == 10
    assert summary.errors == {"read": 1, "timeout": 3, "non-2xx": 4}


@pytest.mark.parametrize("junk", ["", "Running 1s test\n", '{"requests": "ten"}\n', "{\n"])
def test_a_report_without_a_summary_is_refused(junk: str) -> None:
    with pytest.raises((RuntimeError, ValueError)):
        native.parse(junk)


def test_the_python_client_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_LOAD_CLIENT", "asyncio")
    assert native.available() is None
    monkeypatch.delenv("BENCH_LOAD_CLIENT")
    assert native.available() == WRK
