"""The job runner and worker against the simulator, with real SQLite and a local folder."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.asgi import sim_client
from tests.clock import NOW, OCT1, Clock
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import BadParameter
from tsgate.jobs import handlers
from tsgate.jobs.model import Job, JobState, normalise
from tsgate.jobs.runner import JobContext, JobResult
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import OpenedServices, open_services

pytestmark = pytest.mark.anyio


@dataclass
class Env:
    sim: Simulator
    services: OpenedServices
    clock: Clock

    def names(self, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:n]]

    async def submit(self, n: int, days: int, fmt: str = "csv", kind: str = "export") -> Job:
        request = normalise(
            kind=kind,
            site="elm_school",
            points=self.names(n),
            start_ms=OCT1,
            end_ms=OCT1 + days * MS_PER_DAY,
            format=fmt,
        )
        job, _ = await self.services.jobs.submit(request, "t")
        return job

    async def job(self, job_id: str) -> Job:
        found = await self.services.jobs.store.get(job_id)
        assert found is not None
        return found


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=3, now_ms=clock)
    conf = dataclasses.replace(
        settings, inline_worker=False, job_retry_base_s=2, job_max_attempts=3, secret="s3cret"
    )
    async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
        yield Env(sim, services, clock)


async def direct(env: Env, job: Job) -> dict[str, np.ndarray]:
    req = job.request
    found, _ = await env.services.reader.read(
        req.site, req.points, req.start_ms, req.end_ms, token="t"
    )
    return {name: s.t_ms for name, s in found.items()}


@pytest.mark.parametrize("spool_bytes", [handlers.SPOOL_BYTES, 4096], ids=["memory", "disk"])
@pytest.mark.parametrize("fmt", ["csv", "json", "msgpack", "parquet"])
async def test_export_files_hold_every_sample(
    env: Env, fmt: str, spool_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "disk": the export outgrows its spool at once and is written through a real file
    monkeypatch.setattr(handlers, "SPOOL_BYTES", spool_bytes)
    job = await env.submit(3, 3, fmt)
    assert await env.services.worker.run_once()
    done = await env.job(job.id)
    assert done.state is JobState.COMPLETED and done.progress == 100 and done.attempts == 1
    assert done.result_key is not None
    data = await env.services.objects.get(done.result_key)
    assert data is not None and len(data) == done.result_size
    expected = await direct(env, job)
    total = sum(len(t) for t in expected.values())
    assert total > 0 and done.samples_done == done.samples_total == total
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(data))
        assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")
        assert pa.types.is_dictionary(table.schema.field("point").type)
        assert table.schema.field("value").type == pa.float64()
        assert table.num_rows == total
        times = table.column("time").cast(pa.int64()).to_numpy()
        assert set(times.tolist()) == {int(t) for ts in expected.values() for t in ts}
    elif fmt == "csv":
        lines = data.decode().splitlines()
        assert lines[0] == "time,time_ms,point,value" and len(lines) == total + 1
        assert lines[1].split(",")[0].endswith("Z")
    else:
        decode = msgspec.json.decode if fmt == "json" else msgspec.msgpack.decode
        body = decode(data)
        assert body["columns"] == ["time_ms", "point", "value"]
        assert len(body["rows"]) == total == body["metadata"]["totalSamples"]


async def test_query_result_equals_a_direct_read(env: Env) -> None:
    job = await env.submit(2, 2, kind="query")
    await env.services.worker.run_once()
    done = await env.job(job.id)
    assert done.state is JobState.COMPLETED and done.result_key
    body = msgspec.json.decode(await env.services.objects.get(done.result_key) or b"")
    expected = await direct(env, job)
    assert {s["name"]: [d[0] for d in s["data"]] for s in body["series"]} == {
        k: v.tolist() for k, v in expected.items()
    }


async def test_retries_back_off_then_die_and_retry_from_dead_works(env: Env) -> None:
    env.sim.faults.error_rate = 1.0
    job = await env.submit(2, 1)
    delays = []
    for attempt in (1, 2):
        assert await env.services.worker.run_once()
        failed = await env.job(job.id)
        assert failed.state is JobState.FAILED and failed.attempts == attempt
        delay = failed.run_after_ms - env.clock.ms
        base_ms = 2000 * 2 ** (attempt - 1)
        assert base_ms / 2 <= delay <= base_ms  # equal jitter: half fixed, half random
        delays.append(delay)
        env.clock.ms += delay - 1
        assert not await env.services.worker.run_once()  # not before its backoff
        env.clock.ms += 1
    assert await env.services.worker.run_once()
    dead = await env.job(job.id)
    assert dead.state is JobState.DEAD and dead.attempts == 3
    assert dead.error is not None and dead.error.startswith("gave up after 3 attempts")
    env.sim.faults.error_rate = 0.0
    retried = await env.services.jobs.retry(job.id, "t")
    assert retried.state is JobState.QUEUED
    assert await env.services.worker.run_once()
    assert (await env.job(job.id)).state is JobState.COMPLETED


async def test_a_job_never_completes_from_a_stale_cache(env: Env) -> None:
    # day 1 is cached; with upstream failing a chart would be served STALE, a job waits
    await env.services.reader.read("elm_school", env.names(2), OCT1, OCT1 + MS_PER_DAY, token="t")
    env.sim.faults.error_rate = 1.0
    job = await env.submit(2, 2)
    assert await env.services.worker.run_once()
    failed = await env.job(job.id)
    assert failed.state is JobState.FAILED and failed.result_key is None
    assert failed.error is not None and "only part of the range" in failed.error


async def test_a_bad_request_goes_straight_to_dead(env: Env) -> None:
    async def refuse(ctx: JobContext) -> JobResult:
        raise BadParameter("points", "no such point")

    env.services.worker.runner.handlers["export"] = refuse
    job = await env.submit(1, 1)
    await env.services.worker.run_once()
    dead = await env.job(job.id)
    assert dead.state is JobState.DEAD and dead.attempts == 1
    assert dead.error == "not retryable: points: no such point"


async def test_cancel_stops_a_running_job_within_one_slice(env: Env) -> None:
    env.sim.faults.latency_s = 0.05
    job = await env.submit(10, 120)  # one slice per calendar month: four slices
    run = asyncio.create_task(env.services.worker.run_once())
    while (await env.job(job.id)).progress == 0:  # noqa: ASYNC110 - polling the store
        await asyncio.sleep(0.01)
    at_cancel = (await env.job(job.id)).progress
    await env.services.jobs.cancel(job.id, "t")
    await run
    cancelled = await env.job(job.id)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.progress <= at_cancel + 100 / 4 + 1e-9
    assert cancelled.progress < 100
    assert cancelled.result_key is None


async def test_same_request_same_scope_is_the_same_job(env: Env) -> None:
    first = await env.submit(2, 1)
    second = await env.submit(2, 1)
    assert first.id == second.id
    other, created = await env.services.jobs.submit(first.request, "another-token")
    assert created and other.id != first.id
