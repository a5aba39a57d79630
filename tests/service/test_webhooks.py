"""Webhooks through the job store's outbox: recorded with the job's end, delivered by
workers with retries, never lost to a crash and never sent twice at once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from tests.asgi import sim_client
from tests.clock import NOW, OCT1, Clock
from tests.service.test_jobs import Env
from tsgate.core.model import MS_PER_DAY
from tsgate.database.notifications import SqlNotifications as Notifications
from tsgate.jobs.model import Job, JobState, normalise
from tsgate.jobs.webhooks import WebhookOutbox, WebhookSender
from tsgate.jobs.worker import running
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
HOOK = "http://127.0.0.1:9/hook"


class Receiver:
    """Answers each webhook with the next status of ``answers`` (then 204)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(msgspec.json.decode(request.content))
        return httpx.Response(self.answers.pop(0) if self.answers else 204)


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=3, now_ms=clock)
    conf = dataclasses.replace(
        settings,
        inline_worker=False,
        job_max_attempts=2,
        secret="s3cret",
        webhook_allow_private=True,
        webhook_retries=2,
    )
    async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
        yield Env(sim, services, clock)


def outbox_for(env: Env, receiver: Receiver) -> WebhookOutbox:
    sender = WebhookSender(
        b"k",
        allow_private=True,
        retries=2,
        backoff_s=10.0,
        timeout_s=5.0,
        transport=httpx.MockTransport(receiver),
    )
    return WebhookOutbox(Notifications(env.services.database.sql), sender, env.clock)


async def submitted(env: Env, notify_url: str | None = HOOK, point: int = 0) -> Job:
    # one point each: the same request from the same caller would be the same job
    request = normalise(
        kind="export",
        site="elm_school",
        points=[env.names(point + 1)[point]],
        start_ms=OCT1,
        end_ms=OCT1 + MS_PER_DAY,
        format="csv",
        notify_url=notify_url,
    )
    job, _ = await env.services.jobs.submit(request, "t")
    return job


async def finished_job(env: Env, notify_url: str | None = HOOK, point: int = 0) -> Job:
    job = await submitted(env, notify_url, point)
    assert await env.services.worker.run_once()
    return await env.job(job.id)


async def test_the_webhook_is_due_the_moment_the_job_completes(env: Env) -> None:
    done = await finished_job(env)
    assert done.state is JobState.COMPLETED and done.notify_state == "pending"
    assert done.to_json()["webhook"] == {"state": "pending", "attempts": 0}
    silent = await finished_job(env, notify_url=None, point=1)
    assert silent.notify_state is None and "webhook" not in silent.to_json()


async def test_retries_back_off_until_sent(env: Env) -> None:
    receiver = Receiver(503, 503)
    outbox = outbox_for(env, receiver)
    done = await finished_job(env)
    assert await outbox.deliver_due() == 0 and len(receiver.bodies) == 1
    assert await outbox.deliver_due() == 0 and len(receiver.bodies) == 1  # not due yet
    env.clock.ms += 10_000
    assert await outbox.deliver_due() == 0 and len(receiver.bodies) == 2
    env.clock.ms += 19_000
    assert await outbox.deliver_due() == 0 and len(receiver.bodies) == 2  # 20 s after #2
    env.clock.ms += 1_000
    assert await outbox.deliver_due() == 1 and len(receiver.bodies) == 3
    sent = await env.job(done.id)
    assert sent.notify_state == "sent" and sent.notify_attempts == 3
    assert receiver.bodies[-1]["jobId"] == done.id and receiver.bodies[-1]["status"] == "completed"
    env.clock.ms += 3_600_000
    assert await outbox.deliver_due() == 0 and len(receiver.bodies) == 3  # never again


async def test_gives_up_after_the_last_retry(env: Env) -> None:
    receiver = Receiver(500, 500, 500, 500)
    outbox = outbox_for(env, receiver)
    done = await finished_job(env)
    for _ in range(5):
        await outbox.deliver_due()
        env.clock.ms += 60_000
    failed = await env.job(done.id)
    assert failed.notify_state == "failed" and failed.notify_attempts == 3
    assert len(receiver.bodies) == 3


async def test_a_worker_dying_mid_send_delays_but_never_loses_it(env: Env) -> None:
    done = await finished_job(env)
    notifications = Notifications(env.services.database.sql)
    held = await notifications.claim(now_ms=env.clock(), hold_ms=11_000)
    assert held is not None and held.id == done.id  # ... and its worker dies here
    receiver = Receiver()
    outbox = outbox_for(env, receiver)
    assert await outbox.deliver_due() == 0 and receiver.bodies == []
    env.clock.ms += 11_000
    assert await outbox.deliver_due() == 1 and len(receiver.bodies) == 1


async def test_racing_workers_send_each_webhook_once(env: Env) -> None:
    jobs = [await finished_job(env, point=i) for i in range(2)]
    receiver = Receiver()
    outboxes = [outbox_for(env, receiver) for _ in range(4)]
    sent = await asyncio.gather(*(o.deliver_due() for o in outboxes))
    assert sum(sent) == 2
    assert sorted(b["jobId"] for b in receiver.bodies) == sorted(j.id for j in jobs)


async def test_dead_jobs_notify_and_a_retry_notifies_again(env: Env) -> None:
    env.sim.faults.error_rate = 1.0
    job = await submitted(env)
    for _ in range(2):
        assert await env.services.worker.run_once()
        env.clock.ms += 600_000
    dead = await env.job(job.id)
    assert dead.state is JobState.DEAD and dead.notify_state == "pending"
    receiver = Receiver()
    assert await outbox_for(env, receiver).deliver_due() == 1
    assert receiver.bodies[0]["status"] == "dead"
    env.sim.faults.error_rate = 0.0
    again = await env.services.jobs.store.retry(job.id, now_ms=env.clock())
    assert again is not None and again.notify_state == "armed" and again.notify_attempts == 0
    assert await env.services.worker.run_once()
    assert (await env.job(job.id)).notify_state == "pending"


async def test_a_running_worker_delivers_beside_its_jobs(env: Env) -> None:
    receiver = Receiver()
    worker = dataclasses.replace(env.services.worker, outbox=outbox_for(env, receiver), poll_s=0.05)
    job = await submitted(env)
    async with running(worker):
        for _ in range(400):
            if (await env.job(job.id)).notify_state == "sent":
                break
            await asyncio.sleep(0.025)
    assert (await env.job(job.id)).notify_state == "sent"
    assert [b["jobId"] for b in receiver.bodies] == [job.id]
