"""A RabbitMQ queue as the wake-up channel (``amqp://user:pass@host:port/vhost?queue=…``).

A durable queue, one message per id, acknowledged on receipt: the job store makes the
work durable, so a message only needs to wake a worker.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aio_pika

from tsgate.errors import StorageError

DEFAULT_QUEUE = "tsgate.jobs"


class AmqpJobQueue:
    def __init__(self, url: str, queue: str = DEFAULT_QUEUE) -> None:
        self.url = url
        self.queue_name = queue
        self._connection: Any = None
        self._channel: Any = None
        self._queue: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        name = parse_qs(parts.query).get("queue", [DEFAULT_QUEUE])[0]
        return cls(urlunsplit(parts._replace(query="")), name)

    async def _open(self) -> Any:
        # Connect lazily: nothing is opened until the queue is used (and `wiring` stays sync).
        async with self._lock:
            if self._queue is None:
                try:
                    self._connection = await aio_pika.connect_robust(self.url)
                    self._channel = await self._connection.channel()
                    self._queue = await self._channel.declare_queue(self.queue_name, durable=True)
                except (aio_pika.exceptions.AMQPError, OSError) as exc:
                    raise StorageError(f"queue: amqp: {exc}") from exc
            return self._queue

    async def publish(self, job_id: str) -> None:
        await self._open()
        try:
            message = aio_pika.Message(job_id.encode())
            await self._channel.default_exchange.publish(message, routing_key=self.queue_name)
        except (aio_pika.exceptions.AMQPError, OSError) as exc:
            raise StorageError(f"queue: amqp: {exc}") from exc

    async def wait(self, timeout_s: float) -> str | None:
        queue = await self._open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # basic.get polling: no consumer to cancel on timeout, so no message is left
        # unacknowledged inside a cancelled consumer.
        while True:
            try:
                message = await queue.get(no_ack=True, fail=False)
            except (aio_pika.exceptions.AMQPError, OSError) as exc:
                raise StorageError(f"queue: amqp: {exc}") from exc
            if message is not None:
                body: bytes = message.body
                return body.decode()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(0.05, remaining))

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = self._channel = self._queue = None
