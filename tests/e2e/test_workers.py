"""``tsgate serve --workers 2`` on the embedded defaults: both processes serve, give the
same answers as upstream has, see each other's repairs, and keep the limits kept in the
database; each keeps its own rate-limit buckets with ``memory://`` (documented)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.asgi import free_port
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.slow
AUTH = "Bearer two-workers"
SITE = "demo_campus"
WEEK = ("2025-10-01T00:00:00", "2025-10-08T00:00:00")
ADMIN_KEY = "workers-admin"  # a test value, not a secret


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"not up in {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def started(
    argv: list[str], env: dict[str, str], ready: str, log: Path, *, clean_exit: bool = False
) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsgate", *argv, "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + ready, proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
    if clean_exit:  # the supervisor stops its processes and exits 0 on SIGTERM
        assert proc.returncode == 0, log.read_text()[-3000:]


def _children(parent: int) -> list[int]:
    """The server processes under the supervisor (not multiprocessing's tracker)."""
    pids = []
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            pids.append(int(pid))
    return pids


def _server_pid(port: int) -> int:
    """The pid of the supervisor listening on ``port``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                if b"serve" in cmd and str(port).encode() in cmd:
                    return int(entry.name)
    raise AssertionError("no supervisor")


def _owner(conn: socket.socket, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of ``conn``."""
    client_port = conn.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == client_port and fields[3] == "01":  # ESTABLISHED
            inode = fields[9]
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
    return None


def _get(
    conn: socket.socket, target: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a kept-open connection."""
    lines = [f"GET {target} HTTP/1.1", "Host: t", *(f"{k}: {v}" for k, v in headers.items())]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *rest = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (r.partition(":") for r in rest)}
    length = int(fields.get("content-length", "0"))
    while len(body) < length:
        body += conn.recv(65536)
    return int(status_line.split()[1]), fields, body


def test_two_workers_serve_the_same_answers_and_keep_shared_limits(tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc to tell which process holds a connection")
    with started(["simulate"], {}, "/_sim/stats", tmp_path / "sim.log") as sim:
        env = {
            "TSGATE_UPSTREAM_URL": sim + "/api",
            "TSGATE_DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
            "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
            "TSGATE_ADMIN_KEY": ADMIN_KEY,
            "TSGATE_MAX_CHARTS_PER_CALLER": "2",
            "TSGATE_LOG_LEVEL": "warning",
        }
        log = tmp_path / "gw.log"
        with started(["serve", "--workers", "2"], env, "/api/health", log, clean_exit=True) as url:
            port = int(url.rsplit(":", 1)[1])
            workers = _children(_server_pid(port))
            assert len(workers) == 2
            # connections until each process holds one
            held: dict[int, socket.socket] = {}
            spare = []
            for _ in range(400):
                conn = socket.create_connection(("127.0.0.1", port))
                _get(conn, "/api/health", {})
                owner = _owner(conn, workers)
                if owner is not None and owner not in held:
                    held[owner] = conn
                else:
                    spare.append(conn)
                if len(held) == 2:
                    break
            for conn in spare:
                conn.close()
            assert len(held) == 2, "both processes serve"
            a, b = held.values()
            _check_answers(a, b, sim, url)
            _check_shared_budget(a, b)
            for conn in held.values():
                conn.close()


def _chart_target(point: str) -> str:
    return f"/api/timeseries?site={SITE}&points={point}&start={WEEK[0]}&end={WEEK[1]}"


def _check_answers(a: socket.socket, b: socket.socket, sim: str, url: str) -> None:
    auth = {"Authorization": AUTH, "Accept": "application/json"}
    name = create_simulator(seed=1).sites[0].collecting[0].name  # `tsgate simulate`'s model
    target = _chart_target(name.replace("/", "%2F"))
    answers = [_get(conn, target, auth) for conn in (a, b, a, b)]
    assert all(status == 200 for status, _, _ in answers)
    assert answers[0][2] == answers[1][2] == answers[2][2] == answers[3][2]
    assert answers[2][1]["server-timing"].startswith("cache;")  # each keeps its own
    truth = httpx.get(
        f"{sim}/api/points/{name.replace('/', '%2F')}/timeseries",
        params={"start_time": WEEK[0], "end_time": WEEK[1]},
        headers={"Authorization": AUTH},
    ).json()["point_samples"]
    got = httpx.Response(200, content=answers[0][2]).json()["series"][0]["data"]
    assert len(got) == len(truth) and [float(r["value"]) for r in truth] == [v for _, v in got]
    # an invalidation through one process moves the data version the other keys by
    dropped = httpx.post(
        url + "/api/cache/invalidate",
        json={"site": SITE, "points": [name]},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert dropped.status_code == 200, dropped.text
    time.sleep(1.2)  # each process reads the data version through a one-second copy
    for conn in (a, b):
        status, headers, body = _get(conn, target, auth)
        assert status == 200 and body == answers[0][2]
        assert not headers["server-timing"].startswith("cache;")


def _check_shared_budget(a: socket.socket, b: socket.socket) -> None:
    """Saved charts per caller are counted in the database: the budget of 2 holds over
    both processes."""
    statuses = []
    for conn in (a, b, a):
        body = b'{"name":"c","config":{"site":"demo_campus","points":["p"],"view":"line"}}'
        request = (
            "POST /api/charts HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: {AUTH}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        fields = dict(
            line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ":" in line
        )
        length = int({k.lower(): v for k, v in fields.items()}.get("content-length", "0"))
        while len(rest) < length:
            rest += conn.recv(65536)
        statuses.append(int(head.split()[1]))
    assert statuses == [201, 201, 429]
