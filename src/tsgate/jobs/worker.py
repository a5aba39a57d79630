"""The worker loop: wait for a wake-up, claim, run, repeat; poll the store as a sweep.

Any number of workers on any host share one job store. A queue message only shortens
the wait: whenever ``wait`` times out the worker claims anyway, so jobs whose message
was lost, whose backoff elapsed or whose worker died (lease expired) are picked up
within ``poll_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from tsgate.background import Background
from tsgate.errors import StorageError
from tsgate.jobqueue.base import JobQueue
from tsgate.jobs.runner import JobRunner
from tsgate.jobs.store import JobStore
from tsgate.jobs.webhooks import WebhookOutbox

log = logging.getLogger("tsgate.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class NamedWorker(Protocol):
    """The worker of this process as the operations views show it (:class:`Worker`)."""

    @property
    def name(self) -> str: ...


@dataclass
class Worker:
    store: JobStore
    queue: JobQueue
    runner: JobRunner
    clock_ms: Callable[[], int]
    name: str = field(default_factory=worker_name)
    poll_s: float = 1.0
    lease_ms: int = 30_000
    outbox: WebhookOutbox | None = None  # delivers finished jobs' webhooks beside the jobs

    async def run_once(self) -> bool:
        """Claim and run one job; ``False`` when there was none."""
        job = await self.store.claim(self.name, now_ms=self.clock_ms(), lease_ms=self.lease_ms)
        if job is None:
            return False
        log.info("job %s: attempt %d on %s", job.id, job.attempts, self.name)
        state = await self.runner.execute(job)
        log.info("job %s: %s", job.id, state.value if state else "lease lost")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; the job in hand finishes first."""
        webhooks = Background(f"tsgate-webhooks-{self.name}")
        outbox = self.outbox
        if outbox is not None:
            webhooks.start(lambda: self._deliver(outbox, stop))
        try:
            await self._work(stop)
        finally:
            await webhooks.stop()  # a send cut short is sent again once its claim lapses

    async def _deliver(self, outbox: WebhookOutbox, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    # sends run on in the background; each poll starts the newly due
                    await outbox.start_due()
                except StorageError as exc:
                    log.warning("worker %s: webhooks: %s", self.name, exc.detail)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_s)
        finally:
            await outbox.aclose()

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
                dead = await self.store.expire(now_ms=self.clock_ms())
                if dead:
                    log.warning("jobs dead after losing their last lease: %s", dead)
                await self.queue.wait(self.poll_s)
            except StorageError as exc:
                # a database or queue outage: keep the worker alive and try again later
                log.warning("worker %s: %s", self.name, exc.detail)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_s)


@contextlib.asynccontextmanager
async def running(worker: Worker, *, grace_s: float = 0.0) -> AsyncIterator[Worker]:
    """Run ``worker`` in a task for the duration of the block.

    On exit the worker stops taking jobs; a job in hand gets ``grace_s`` to finish and is
    then cancelled, which gives it back to the queue uncounted.
    """
    stop = asyncio.Event()
    task = Background(f"tsgate-worker-{worker.name}")
    task.start(lambda: worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task.stop(grace_s=grace_s)
