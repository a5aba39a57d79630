"""Contract tests for the job queue seam over memory, Redis and RabbitMQ."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import service_url
from tsgate.errors import ConfigError
from tsgate.jobqueue import JobQueue, open_job_queue

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[JobQueue]:
    name = f"tsgate-test-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        url = "memory://"
    elif request.param == "redis":
        url = f"{service_url('redis')}?key={name}"
    else:
        url = f"{service_url('rabbitmq')}?queue={name}"
    q = open_job_queue(url)
    try:
        yield q
    finally:
        await _drain(q)
        await q.aclose()


async def _drain(q: JobQueue) -> None:
    while await q.wait(0.01) is not None:
        pass


async def test_published_ids_arrive_in_order(queue: JobQueue) -> None:
    for job_id in ("a", "b", "c"):
        await queue.publish(job_id)
    assert [await queue.wait(2.0) for _ in range(3)] == ["a", "b", "c"]


async def test_wait_times_out_with_none(queue: JobQueue) -> None:
    started = time.monotonic()
    assert await queue.wait(0.2) is None
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_each_id_is_delivered_once(queue: JobQueue) -> None:
    await queue.publish("only")
    assert await queue.wait(2.0) == "only"
    assert await queue.wait(0.1) is None


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"amqp://, memory://, redis://"):
        open_job_queue("kafka://x")
