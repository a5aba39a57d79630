"""The simulator and the gateway as child processes: started, awaited, measured, stopped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

STOP_TIMEOUT_S = 10.0


@dataclass
class Child:
    """One child process, its address and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_rss: int | None = None  # resident memory before the first scenario

    def peak_rss_bytes(self) -> int | None:
        """The kernel's high-water mark of resident memory (``VmHWM``), summed over the
        process and its server processes (``--workers``)."""
        peaks = [_status_kib(pid, "VmHWM") for pid in tree(self.proc.pid)]
        known = [p for p in peaks if p is not None]
        return sum(known) if known else None

    def rss_bytes(self) -> int | None:
        """Resident memory now (``VmRSS``), summed like :meth:`peak_rss_bytes`."""
        now = [_status_kib(pid, "VmRSS") for pid in tree(self.proc.pid)]
        known = [r for r in now if r is not None]
        return sum(known) if known else None

    def log_tail(self, max_lines: int = 20) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-max_lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator(
    workdir: Path,
    *,
    latency_ms: float,
    sample_cost_us: float = 0.0,
    seed: int = 1,
    visibility_delay_s: float = 0.0,
    large_site: bool = False,
) -> Iterator[Child]:
    port = free_port()
    argv = ["simulate", "--port", str(port), "--seed", str(seed), "--latency-ms", str(latency_ms)]
    argv += ["--sample-cost-us", str(sample_cost_us)]
    argv += ["--visibility-delay-s", str(visibility_delay_s)]
    argv += ["--large-site"] if large_site else []
    with _child("simulator", argv, os.environ, workdir, f"http://127.0.0.1:{port}") as child:
        _wait_ready(child, "/_sim/stats", timeout_s=30.0)
        yield child


@contextlib.contextmanager
def gateway(
    workdir: Path,
    *,
    upstream_url: str,
    extra_env: Mapping[str, str],
    workers: int = 1,
    name: str = "tsgate",
) -> Iterator[Child]:
    """``tsgate serve --workers N`` on its own data folder (``data`` for the first)."""
    port = free_port()
    data = workdir / ("data" if name == "tsgate" else f"data-{name}")
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TSGATE_UPSTREAM_URL": upstream_url,
        "TSGATE_UPSTREAM_TOKEN": "bench",
        "TSGATE_DATABASE_URL": f"sqlite:///{data}/t.db",
        "TSGATE_OBJECTS_URL": f"file://{data}/objects",
        **extra_env,
    }
    argv = ["serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    with _child(name, argv, env, workdir, f"http://127.0.0.1:{port}") as child:
        _wait_ready(child, "/api/health", timeout_s=120.0)
        if workers > 1:
            _wait_workers(child, workers, timeout_s=120.0)
        yield child


@contextlib.contextmanager
def floor(workdir: Path, answer: Path) -> Iterator[Child]:
    """The framework floor (``benchmarks.floor``) serving the captured ``answer``."""
    port = free_port()
    argv = ["--port", str(port), "--answer", str(answer)]
    url = f"http://127.0.0.1:{port}"
    # the child runs in workdir: the checkout must be importable for ``benchmarks.floor``
    checkout = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    with _child("floor", argv, env, workdir, url, module="benchmarks.floor") as child:
        _wait_ready(child, "/api/health", timeout_s=30.0)
        yield child


@contextlib.contextmanager
def _child(
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    workdir: Path,
    base_url: str,
    *,
    module: str = "tsgate",
) -> Iterator[Child]:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            env=dict(env),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    child = Child(name, proc, base_url, log_path)
    try:
        yield child
    finally:
        _stop(proc)


def _die_with_parent() -> None:
    # a benchmark killed outright must not leave servers behind (PR_SET_PDEATHSIG)
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def _wait_ready(child: Child, path: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited ({child.proc.returncode}):\n{child.log_tail()}"
            )
        try:
            resp = httpx.get(child.base_url + path, timeout=5.0)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} not ready in {timeout_s:g} s ({last}):\n{child.log_tail()}")


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found = [pid]
    for parent in found:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found.extend(int(c) for c in children)
    return found


def reset_peak_rss(pid: int) -> None:
    """Start the ``VmHWM`` of ``pid`` and the processes below it again from their resident
    memory now (Linux: writing 5 to ``clear_refs``), so a peak is one scenario's."""
    for p in tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time ``pid`` and the processes below it have used so far."""
    times = [cpu_seconds(p) for p in tree(pid)]
    known = [t for t in times if t is not None]
    return sum(known) if known else None


def _wait_workers(child: Child, workers: int, *, timeout_s: float) -> None:
    """Until every server process under the supervisor answers: a process accepts
    connections only once its app has started, so connections are opened until each
    process holds one (seen through ``/proc``)."""
    deadline = time.monotonic() + timeout_s
    port = int(child.base_url.rsplit(":", 1)[1])
    seen: set[int] = set()
    while time.monotonic() < deadline:
        servers = [p for p in tree(child.proc.pid) if b"spawn_main" in _cmdline(p)]
        if len(servers) == workers and seen >= set(servers):
            return
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: b\r\n\r\n")
            conn.recv(65536)
            owner = _owner(conn.getsockname()[1], servers)
        if owner is not None:
            seen.add(owner)
        else:
            time.sleep(0.1)
    raise RuntimeError(f"{child.name}: {workers} processes not serving in {timeout_s:g} s")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _owner(client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")
