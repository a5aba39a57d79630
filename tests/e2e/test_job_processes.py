"""``tsgate serve`` runs its jobs in a child process of its own (``TSGATE_JOB_PROCESSES``),
on the embedded SQLite database and object folder it shares with the server process.

The child runs the jobs (the job table names its pid), a cached chart is answered while
it works, a child killed outright is reported and replaced (and the next job runs on the
new one), and stopping the server stops the child."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.asgi import free_port
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.slow
AUTH = {"Authorization": "Bearer job-processes"}
SITE = "elm_school"
DAY = ("2025-08-01T00:00:00", "2025-08-02T00:00:00")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsgate", *argv],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_for(predicate: Any, what: str, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def answers(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


def job_children(server: int) -> list[int]:
    """The live ``tsgate worker`` processes whose parent is the server process (started by
    one of its threads, so not in its main thread's list of children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if int(fields[1]) == server and fields[0] != "Z" and b"worker" in argv:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def job_worker_pid(db: Path, job_id: str) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        (worker,) = conn.execute("SELECT worker FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return int(worker.split(":")[1])


def export(url: str, point: str, start: str, end: str) -> str:
    body = {"kind": "export", "site": SITE, "points": [point], "start": start, "end": end}
    posted = httpx.post(f"{url}/api/jobs", json={**body, "format": "csv"}, headers=AUTH)
    assert posted.status_code == 202, posted.text
    job_id: str = posted.json()["jobId"]
    return job_id


def status(url: str, job_id: str) -> str:
    got: str = httpx.get(f"{url}/api/jobs/{job_id}", headers=AUTH).json()["status"]
    return got


def truth_values(sim: str, point: str, start: str, end: str) -> list[float]:
    rows = httpx.get(
        f"{sim}/api/points/{point.replace('/', '%2F')}/timeseries",
        params={"start_time": start, "end_time": end},
        headers=AUTH,
        timeout=60,
    ).json()["point_samples"]
    return [float(r["value"]) for r in rows]


def exported_values(url: str, job_id: str) -> list[float]:
    got = httpx.get(f"{url}/api/jobs/{job_id}/result", headers=AUTH, timeout=60)
    assert got.status_code == 200, got.text
    return [float(row["value"]) for row in csv.DictReader(io.StringIO(got.text))]


@dataclasses.dataclass(frozen=True)
class Served:
    sim: str
    url: str
    db: Path
    log: Path
    server: subprocess.Popen[bytes]


@contextlib.contextmanager
def served(tmp_path: Path, workers: int, **settings: str) -> Iterator[Served]:
    """A simulator and ``tsgate serve --workers N`` on SQLite and a folder in
    ``tmp_path``, with the ``TSGATE_`` settings given; yielded once the simulator answers
    (the server may still be starting)."""
    sim_port, port = free_port(), free_port()
    sim, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    db, log = tmp_path / "t.db", tmp_path / "gw.log"
    env = {
        "TSGATE_UPSTREAM_URL": sim + "/api",
        "TSGATE_DATABASE_URL": f"sqlite:///{db}",
        "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
        **{f"TSGATE_{k}": v for k, v in settings.items()},
    }
    with (
        process(["simulate", "--port", str(sim_port)], {}, tmp_path / "sim.log"),
        process(["serve", "--port", str(port), "--workers", str(workers)], env, log) as server,
    ):
        wait_for(lambda: answers(sim + "/_sim/stats"), "the simulator", tmp_path / "sim.log")
        yield Served(sim, url, db, log, server)


def test_serve_runs_jobs_in_a_child_that_is_replaced_when_killed_and_stops_with_it(
    tmp_path: Path,
) -> None:
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting]
    with served(tmp_path, 1, JOB_POLL_S="0.2", LOG_FORMAT="text") as s:
        sim, url, db, log, server = s.sim, s.url, s.db, s.log, s.server
        wait_for(lambda: answers(url + "/api/health"), "the server", log)
        wait_for(lambda: len(job_children(server.pid)) == 1, "its job process", log)
        (first,) = job_children(server.pid)

        # a month of one point is CPU work for the child; a cached chart is answered meanwhile
        chart = {"site": SITE, "points": names[0], "start": DAY[0], "end": DAY[1]}
        cold = httpx.get(f"{url}/api/timeseries", params=chart, headers=AUTH, timeout=60)
        assert cold.status_code == 200, cold.text
        month = ("2025-07-01T00:00:00", "2025-08-01T00:00:00")
        job = export(url, names[1], *month)
        wait_for(lambda: status(url, job) != "queued", "the job to start", log)
        cached = httpx.get(f"{url}/api/timeseries", params=chart, headers=AUTH, timeout=60)
        assert cached.status_code == 200 and cached.content == cold.content
        got = [v for _, v in cached.json()["series"][0]["data"]]
        assert got == truth_values(sim, names[0], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the export", log)
        assert job_worker_pid(db, job) == first  # the child ran it, not the server
        assert exported_values(url, job) == truth_values(sim, names[1], *month)

        # killed outright: reported, replaced, and the next job runs on the new child
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: job_children(server.pid) not in ([], [first]), "a new child", log)
        (second,) = job_children(server.pid)
        assert "exited (signal SIGKILL)" in log.read_text()
        job = export(url, names[2], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the second export", log)
        assert job_worker_pid(db, job) == second
        assert exported_values(url, job) == truth_values(sim, names[2], *DAY)

        server.terminate()  # uvicorn exits by the signal that stopped it, once shut down
        assert server.wait(30) == -signal.SIGTERM, log.read_text()[-3000:]
        assert not alive(second), "the job process stops with the server"


def test_job_processes_zero_keeps_the_worker_inside_the_server(tmp_path: Path) -> None:
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting]
    with served(tmp_path, 1, JOB_PROCESSES="0") as s:
        sim, url, db, log, server = s.sim, s.url, s.db, s.log, s.server
        wait_for(lambda: answers(url + "/api/health"), "the server", log)
        job = export(url, names[0], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the export", log)
        assert job_worker_pid(db, job) == server.pid
        assert job_children(server.pid) == []
        assert exported_values(url, job) == truth_values(sim, names[0], *DAY)


def wake_dirs(child: int) -> list[Path]:
    """The wake-up directory the server process names to a job process (in its env)."""
    raw = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
    return [Path(v.split(b"=", 1)[1].decode()) for v in raw if v.startswith(b"_TSGATE_WAKE_DIR=")]


def test_a_job_posted_wakes_the_job_process_at_once_also_after_a_restart(tmp_path: Path) -> None:
    """With a 30 s poll, each job completes before the child's next poll could have come:
    the child polls when it starts, then only every 30 s, unless woken."""
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting]
    poll_s = 30.0
    with served(tmp_path, 1, JOB_POLL_S=str(poll_s), LOG_FORMAT="text") as s:
        sim, url, db, log, server = s.sim, s.url, s.db, s.log, s.server
        wait_for(lambda: len(job_children(server.pid)) == 1, "its job process", log)
        seen = time.monotonic()  # before the child's first poll
        (first,) = job_children(server.pid)
        wait_for(lambda: answers(url + "/api/health"), "the server", log)
        (wake,) = wake_dirs(first)
        assert wake.stat().st_mode & 0o777 == 0o700
        wait_for(lambda: len(list(wake.glob("*.sock"))) == 1, "the child's socket", log)

        job = export(url, names[0], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the export", log, poll_s)
        assert time.monotonic() - seen < poll_s, "woken, not found by the poll"
        assert job_worker_pid(db, job) == first
        assert exported_values(url, job) == truth_values(sim, names[0], *DAY)

        # killed outright: the new child binds anew (the dead one's socket goes) and is woken
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: job_children(server.pid) not in ([], [first]), "a new child", log)
        seen = time.monotonic()
        (second,) = job_children(server.pid)
        wait_for(
            lambda: any(p.name.startswith(f"{second}-") for p in wake.glob("*.sock")),
            "the new child's socket",
            log,
        )
        job = export(url, names[1], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the second export", log, poll_s)
        assert time.monotonic() - seen < poll_s, "the restarted child is woken too"
        assert job_worker_pid(db, job) == second
        assert exported_values(url, job) == truth_values(sim, names[1], *DAY)
        assert [p.name.split("-")[0] for p in wake.glob("*.sock")] == [str(second)]

        server.terminate()
        assert server.wait(30) == -signal.SIGTERM, log.read_text()[-3000:]
        assert not wake.exists(), "the directory is removed at stop"


def test_several_processes_claim_a_job_once_and_the_poll_remains(tmp_path: Path) -> None:
    """Two server processes and two job processes: every child is woken, one runs the job;
    with the sockets' directory gone, jobs still run, found by the poll."""
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting]
    with served(tmp_path, 2, JOB_POLL_S="3", JOB_PROCESSES="2", LOG_FORMAT="text") as s:
        sim, url, db, log, server = s.sim, s.url, s.db, s.log, s.server
        wait_for(lambda: answers(url + "/api/health"), "the server", log)
        wait_for(lambda: len(job_children(server.pid)) == 2, "its job processes", log)
        (wake,) = wake_dirs(job_children(server.pid)[0])
        wait_for(lambda: len(list(wake.glob("*.sock"))) == 2, "the children's sockets", log)
        jobs = [export(url, name, *DAY) for name in names[:4]]
        for job in jobs:
            wait_for(lambda j=job: status(url, j) == "completed", "the exports", log)
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            attempts = conn.execute("SELECT attempts FROM jobs").fetchall()
        assert attempts == [(1,)] * len(jobs)  # each claimed once
        for job, name in zip(jobs, names, strict=False):
            assert exported_values(url, job) == truth_values(sim, name, *DAY)

        shutil.rmtree(wake)  # lost: the wake-ups stop, the poll does not
        job = export(url, names[4], *DAY)
        wait_for(lambda: status(url, job) == "completed", "the export by the poll", log)
        assert exported_values(url, job) == truth_values(sim, names[4], *DAY)
        assert "Traceback" not in log.read_text()
