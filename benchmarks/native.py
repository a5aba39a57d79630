"""The load scenarios' native load generator: Debian's ``wrk``, when installed.

The Python client of ``benchmarks.load`` spends about a third of the server's CPU per
request on the same cores, which caps what two server processes can show. ``wrk`` (one
thread, keep-alive connections, the same request line and headers) costs a fraction of
that; its CPU is measured from the kernel's accounting of the finished process and
reported beside the servers'. Latency percentiles come from wrk itself (``wrk.lua``
prints them as JSON), as do the socket errors, timeouts and non-2xx answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import msgspec

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
TIMEOUT_S = 10  # a request unanswered this long counts as an error
_ERROR_KINDS = ("connect", "read", "write", "timeout", "non2xx")


class Summary(msgspec.Struct, frozen=True):
    """What ``wrk.lua``'s ``done()`` prints (latencies in microseconds)."""

    requests: int
    duration_us: int
    p50_us: int
    p99_us: int
    max_us: int
    connect: int
    read: int
    write: int
    status: int  # answers with a status above 399 (wrk's own count; non2xx includes them)
    timeout: int
    non2xx: int

    @property
    def errors(self) -> dict[str, int]:
        named = {"non2xx": "non-2xx"}
        return {named.get(k, k): n for k in _ERROR_KINDS if (n := getattr(self, k))}


def available() -> str | None:
    """The path of ``wrk``, or None: the benchmarks then load with the Python client."""
    if os.environ.get("BENCH_LOAD_CLIENT", "") == "asyncio":
        return None
    return shutil.which("wrk")


def parse(stdout: str) -> Summary:
    """The JSON line of ``wrk.lua`` among wrk's own report."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return msgspec.json.decode(line, type=Summary)
    raise RuntimeError(f"wrk printed no summary: {stdout[-500:]!r}")


async def run(
    wrk: str,
    url: str,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    until: asyncio.Event | None = None,
) -> tuple[Summary, float]:
    """Load ``url`` for ``duration_s``, or until ``until`` is set if sooner (wrk stops on
    SIGINT and still reports); wrk's summary and the CPU seconds wrk used."""
    argv = [
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
        f"--timeout={TIMEOUT_S}s", "-s", str(SCRIPT),
    ]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    with tempfile.TemporaryFile() as out:
        proc = _start(argv, out)
        pidfd = os.pidfd_open(proc.pid)  # signals reach this process, never a reused pid
        try:
            ended = asyncio.ensure_future(asyncio.to_thread(_reap, proc))
            if until is not None:
                stop = asyncio.ensure_future(until.wait())
                await asyncio.wait({ended, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not ended.done():
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signal.SIGINT)
            cpu_s = await ended
        finally:
            os.close(pidfd)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {text[-500:]!r}")
    return parse(text), cpu_s


def _start(argv: list[str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _reap(proc: subprocess.Popen[bytes]) -> float:
    """Wait for wrk; the CPU seconds it used (wait4: the kernel's own account of exactly
    this process)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime
