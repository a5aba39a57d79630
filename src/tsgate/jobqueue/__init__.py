"""The job queue seam: wake-ups for workers; job state itself lives in the SQL store.

``open_job_queue(url)`` picks the adapter by URL scheme (``memory://``, ``redis://``,
``amqp://``); drivers are imported only when their scheme is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from tsgate._backends import Adapter, load_adapter
from tsgate.jobqueue.base import JobQueue

if TYPE_CHECKING:
    from tsgate.jobqueue.amqp import AmqpJobQueue
    from tsgate.jobqueue.memory import MemoryJobQueue
    from tsgate.jobqueue.redis import RedisJobQueue

    # mypy proves here that every adapter satisfies the Protocol.
    def _conforms(a: MemoryJobQueue, b: RedisJobQueue, c: AmqpJobQueue) -> None:
        queues: tuple[JobQueue, ...] = (a, b, c)
        del queues


__all__ = ["TABLE", "JobQueue", "open_job_queue"]

TABLE = {
    "memory": Adapter("tsgate.jobqueue.memory:MemoryJobQueue"),
    "redis": Adapter("tsgate.jobqueue.redis:RedisJobQueue", extra="redis"),
    "amqp": Adapter("tsgate.jobqueue.amqp:AmqpJobQueue", extra="rabbitmq"),
}


class _JobQueueClass(Protocol):
    def from_url(self, url: str) -> JobQueue: ...


def open_job_queue(url: str) -> JobQueue:
    """The queue for ``url``; close it with ``aclose()``. ``ConfigError`` for an unknown
    scheme, ``MissingDependency`` when the driver is missing."""
    cls = cast(_JobQueueClass, load_adapter("queue", url, TABLE))
    return cls.from_url(url)
