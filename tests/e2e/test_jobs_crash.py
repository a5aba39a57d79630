"""Crash tests with real processes: every job completes exactly once after a ``kill -9``.

A simulator process (with latency) is the upstream; a ``tsgate serve`` takes 20 export
jobs; ``tsgate worker`` processes (or the server's inline worker) run them. The process
holding a running job is killed with SIGKILL; its lease expires and another process
finishes the job. Exactly once: every job completed, one result object per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.asgi import free_port
from tests.conftest import service_url
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.slow
JOBS = 20
DEADLINE_S = 50


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    db_query: Any
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{args[0]}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tsgate", *args],
            env=self.env | (extra or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    def running_pids(self) -> set[int]:
        rows = self.db_query("SELECT worker FROM jobs WHERE state = 'running'")
        return {int(w.split(":")[1]) for (w,) in rows if w}


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def requests_for_jobs() -> list[dict[str, object]]:
    names = [p.name for p in create_simulator(seed=1).sites[2].collecting]
    # distinct requests (one point each), small enough that 20 run in seconds
    return [
        {
            "kind": "export",
            "site": "elm_school",
            "points": names[i : i + 1],
            "start": "2025-08-01T00:00:00",
            "end": "2025-08-08T00:00:00",
            "format": "csv",
        }
        for i in range(JOBS)
    ]


@contextlib.contextmanager
def cluster(tmp: Path, database_url: str, db_query: Any, queue_url: str) -> Iterator[Cluster]:
    sim_port = free_port()
    env = dict(os.environ) | {
        "TSGATE_UPSTREAM_URL": f"http://127.0.0.1:{sim_port}/api",
        "TSGATE_UPSTREAM_TOKEN": "demo",
        "TSGATE_DATABASE_URL": database_url,
        "TSGATE_OBJECTS_URL": f"file://{tmp}/objects",
        "TSGATE_QUEUE_URL": queue_url,
        "TSGATE_JOB_LEASE_S": "2",
        "TSGATE_JOB_HEARTBEAT_S": "0.5",
        "TSGATE_JOB_POLL_S": "0.3",
        "TSGATE_WORKERS": "1",  # the process killed is the one that holds the jobs
    }
    c = Cluster(tmp, env, db_query)
    try:
        c.start("simulate", "--port", str(sim_port), "--latency-ms", "60")
        wait_http(f"http://127.0.0.1:{sim_port}/api/sites")
        yield c
    finally:
        c.stop()


def serve(c: Cluster, *, inline: bool) -> str:
    port = free_port()
    extra = {
        "TSGATE_INLINE_WORKER": "true" if inline else "false",
        # the server process itself holds the jobs it is killed with (not a job process)
        "TSGATE_JOB_PROCESSES": "0",
    }
    c.start("serve", "--port", str(port), "--log-level", "warning", extra=extra)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/jobs")
    return url


def submit_all(url: str) -> list[str]:
    ids = []
    for body in requests_for_jobs():
        response = httpx.post(f"{url}/api/jobs", json=body, timeout=10)
        assert response.status_code == 202, response.text
        ids.append(response.json()["jobId"])
    assert len(set(ids)) == JOBS
    return ids


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_exactly_once(c: Cluster, ids: list[str]) -> None:
    def finished() -> bool:
        rows = c.db_query("SELECT state FROM jobs")
        return len(rows) == JOBS and all(s in {"completed", "dead"} for (s,) in rows)

    wait_for(finished, "every job to finish")
    rows = c.db_query("SELECT id, state, attempts, result_key, result_size FROM jobs")
    assert {r[1] for r in rows} == {"completed"}, rows
    objects = sorted((c.tmp / "objects" / "jobs").rglob("result.*"))
    assert len(objects) == JOBS  # one result object per job
    for job_id, _, _, key, size in rows:
        assert (c.tmp / "objects" / key).stat().st_size == size
        assert job_id in key
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert max(r[2] for r in rows) >= 2  # the killed attempt was counted


def kill_a_worker_mid_job(c: Cluster, workers: list[subprocess.Popen[bytes]]) -> int:
    pids = {w.pid for w in workers}
    holding: set[int] = set()

    def held() -> bool:
        # read once: a job can finish between two reads of the running jobs
        holding.update(c.running_pids() & pids)
        return bool(holding)

    wait_for(held, "a worker to hold a job")
    victim = next(iter(holding))
    os.kill(victim, signal.SIGKILL)
    return victim


def run_scenario(c: Cluster) -> float:
    started = time.monotonic()
    url = serve(c, inline=False)
    workers = [c.start("worker"), c.start("worker")]
    ids = submit_all(url)
    kill_a_worker_mid_job(c, workers)
    assert_exactly_once(c, ids)
    return time.monotonic() - started


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    base = service_url("postgres")
    schema = f"tsgate_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            try:
                return conn.execute(sql).fetchall()  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable:
                return []

    try:
        yield f"{base}?options={quote(f'-csearch_path={schema}')}", query
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgres
@pytest.mark.redis
def test_kill_9_a_worker_on_redis_and_postgres(
    tmp_path: Path, postgres: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"tsgate-crash-{uuid.uuid4().hex[:8]}"
    queue_url = f"{service_url('redis')}?key={key}"
    with cluster(tmp_path, postgres[0], postgres[1], queue_url) as c:
        elapsed = run_scenario(c)
    import redis

    with redis.Redis.from_url(service_url("redis")) as r:
        r.delete(key)
    with capsys.disabled():
        print(f"\n  crash test redis+postgres: {elapsed:.1f} s")


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_kill_9_a_worker_on_rabbitmq_and_postgres(
    tmp_path: Path, postgres: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"tsgate-crash-{uuid.uuid4().hex[:8]}"
    with cluster(
        tmp_path, postgres[0], postgres[1], f"{service_url('rabbitmq')}?queue={name}"
    ) as c:
        elapsed = run_scenario(c)
    asyncio.run(_delete_amqp_queue(name))
    with capsys.disabled():
        print(f"\n  crash test rabbitmq+postgres: {elapsed:.1f} s")


async def _delete_amqp_queue(name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(service_url("rabbitmq"))
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


def test_embedded_sqlite_survives_a_server_kill_and_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "tsgate.db"

    def query(sql: str) -> list[tuple[Any, ...]]:
        if not db_path.exists():
            return []
        with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as conn:
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.OperationalError:
                return []

    started = time.monotonic()
    with cluster(tmp_path, f"sqlite:///{db_path}", query, "memory://") as c:
        url = serve(c, inline=True)
        ids = submit_all(url)
        server = c.procs[-1]
        wait_for(lambda: server.pid in c.running_pids(), "the server to hold a job")
        server.kill()
        server.wait(10)
        serve(c, inline=True)
        assert_exactly_once(c, ids)
    with capsys.disabled():
        print(f"\n  crash test embedded sqlite: {time.monotonic() - started:.1f} s")
