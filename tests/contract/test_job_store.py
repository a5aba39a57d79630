"""Contract tests for the SQL job store on SQLite (file, WAL) and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tsgate.database import Database, open_database
from tsgate.database.jobs import SqlJobStore as JobStore
from tsgate.jobs.handlers import part_key
from tsgate.jobs.model import Job, JobKind, JobRequest, JobState
from tsgate.jobs.service import cleanup_jobs
from tsgate.object_store.memory import MemoryObjectStore

pytestmark = pytest.mark.anyio
T0 = 1_760_000_000_000
LEASE = 10_000


def job(job_id: str, *, kind: JobKind = JobKind.EXPORT, max_attempts: int = 3) -> Job:
    request = JobRequest(kind, "campus", ("p",), T0, T0 + 86_400_000, "csv")
    return Job(
        id=job_id,
        request=request,
        scope="s",
        state=JobState.QUEUED,
        priority=request.priority,
        max_attempts=max_attempts,
        created_ms=T0,
        updated_ms=T0,
        run_after_ms=T0,
    )


async def test_submit_is_idempotent_and_requeues_dead_jobs(db: Database) -> None:
    store = JobStore(db.sql)
    first, created = await store.submit(job("a"), token_box=b"box", now_ms=T0)
    again, created_again = await store.submit(job("a"), token_box=b"box", now_ms=T0 + 1)
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.state is JobState.QUEUED
    assert await store.token_box("a") == b"box"
    claimed = await store.claim("w", now_ms=T0, lease_ms=LEASE)
    assert claimed is not None
    assert await store.finish(claimed, JobState.DEAD, now_ms=T0, error="boom")
    requeued, created = await store.submit(job("a"), token_box=None, now_ms=T0 + 2)
    assert created and requeued.state is JobState.QUEUED and requeued.attempts == 0


async def test_interactive_jobs_are_claimed_before_bulk(db: Database) -> None:
    store = JobStore(db.sql)
    await store.submit(job("bulk"), token_box=None, now_ms=T0)
    await store.submit(job("chart", kind=JobKind.QUERY), token_box=None, now_ms=T0)
    first = await store.claim("w", now_ms=T0, lease_ms=LEASE)
    assert first is not None and first.id == "chart"


async def test_two_concurrent_claimers_take_each_job_exactly_once(db_url: str) -> None:
    async with (
        await open_database(db_url, migrate=True) as one,
        await open_database(db_url) as two,
    ):
        # both connections open before the race (a first connection takes longer than
        # a claim: the other claimer took every job meanwhile)
        for db in (one, two):
            assert await JobStore(db.sql).claim("warm", now_ms=T0, lease_ms=LEASE) is None
        for i in range(30):
            await JobStore(one.sql).submit(job(f"j{i:02}"), token_box=None, now_ms=T0)

        async def drain(store: JobStore, name: str) -> list[str]:
            taken = []
            while (got := await store.claim(name, now_ms=T0, lease_ms=LEASE)) is not None:
                taken.append(got.id)
                await asyncio.sleep(0)
            return taken

        a, b = await asyncio.gather(drain(JobStore(one.sql), "a"), drain(JobStore(two.sql), "b"))
    assert sorted(a + b) == [f"j{i:02}" for i in range(30)]
    assert a and b  # both took part


async def test_expired_lease_is_reclaimed_and_only_the_new_holder_completes(db: Database) -> None:
    store = JobStore(db.sql)
    await store.submit(job("a"), token_box=None, now_ms=T0)
    old = await store.claim("w1", now_ms=T0, lease_ms=LEASE)
    assert old is not None and old.attempts == 1
    assert await store.claim("w2", now_ms=T0 + LEASE - 1, lease_ms=LEASE) is None
    new = await store.claim("w2", now_ms=T0 + LEASE + 1, lease_ms=LEASE)
    assert new is not None and new.attempts == 2 and new.worker == "w2"
    assert await store.heartbeat(old, now_ms=T0 + LEASE + 2, lease_ms=LEASE) == (False, False)
    assert not await store.finish(old, JobState.COMPLETED, now_ms=T0 + LEASE + 2, result_key="x")
    assert await store.finish(new, JobState.COMPLETED, now_ms=T0 + LEASE + 3, result_key="y")
    done = await store.get("a")
    assert done is not None and done.state is JobState.COMPLETED and done.result_key == "y"


async def test_heartbeat_keeps_the_lease_and_records_progress(db: Database) -> None:
    store = JobStore(db.sql)
    await store.submit(job("a"), token_box=None, now_ms=T0)
    held = await store.claim("w", now_ms=T0, lease_ms=LEASE)
    assert held is not None
    beat = await store.heartbeat(held, now_ms=T0 + 9_000, lease_ms=LEASE, progress=(50, 10, 2))
    assert beat == (True, False)
    assert await store.claim("x", now_ms=T0 + LEASE + 1, lease_ms=LEASE) is None
    row = await store.get("a")
    assert row is not None and (row.progress, row.samples_done) == (50, 10)


async def test_cancel_stops_waiting_jobs_and_flags_running_ones(db: Database) -> None:
    store = JobStore(db.sql)
    await store.submit(job("run"), token_box=b"t", now_ms=T0)
    running = await store.claim("w", now_ms=T0, lease_ms=LEASE)
    await store.submit(job("wait"), token_box=b"t", now_ms=T0)
    waiting = await store.cancel("wait", now_ms=T0 + 1)
    assert waiting is not None and waiting.state is JobState.CANCELLED
    assert await store.token_box("wait") is None
    flagged = await store.cancel("run", now_ms=T0 + 1)
    assert flagged is not None and flagged.cancel_requested and flagged.state is JobState.RUNNING
    assert running is not None
    assert await store.heartbeat(running, now_ms=T0 + 2, lease_ms=LEASE) == (True, True)


async def test_lost_lease_on_the_last_attempt_goes_dead(db: Database) -> None:
    store = JobStore(db.sql)
    await store.submit(job("a", max_attempts=1), token_box=None, now_ms=T0)
    assert await store.claim("w", now_ms=T0, lease_ms=LEASE) is not None
    assert await store.claim("w", now_ms=T0 + 2 * LEASE, lease_ms=LEASE) is None
    assert await store.expire(now_ms=T0 + 2 * LEASE) == ["a"]
    dead = await store.get("a")
    assert dead is not None and dead.state is JobState.DEAD and "lease" in (dead.error or "")
    retried = await store.retry("a", now_ms=T0 + 3 * LEASE)
    assert retried is not None and retried.state is JobState.QUEUED and retried.attempts == 0


async def test_cleanup_removes_old_finished_jobs_and_their_results(db: Database) -> None:
    store, objects = JobStore(db.sql), MemoryObjectStore()
    for name in ("old", "new", "queued"):
        await store.submit(job(name), token_box=None, now_ms=T0)
    for at in (T0, T0 + 5_000):
        claimed = await store.claim("w", now_ms=at, lease_ms=LEASE)
        assert claimed is not None
        await objects.put(f"jobs/{claimed.id}", b"x")
        await objects.put(part_key(claimed.id, 0), b"{}")  # a progressive chart's part
        await store.finish(claimed, JobState.COMPLETED, now_ms=at, result_key=f"jobs/{claimed.id}")
    removed = await cleanup_jobs(store, objects, now_ms=T0 + 10_000, retention_ms=7_000)
    assert removed == 1
    assert await store.get("old") is None and await objects.get("jobs/old") is None
    assert await objects.get(part_key("old", 0)) is None
    assert await objects.get(part_key("new", 0)) == b"{}"
    assert {j.id for j in await store.list_jobs()} == {"new", "queued"}
    assert await store.counts() == {"completed": 1, "queued": 1}
