"""One background loop of this process: started once, stopped by cancelling it (after
a grace to finish by itself, when asked) and waiting for it to end. A loop that dies of
an error has it logged, never lost, whether it ends by itself or while being stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import Any

log = logging.getLogger("tsgate.background")

Loop = Callable[[], Coroutine[Any, Any, None]]


class Background:
    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, loop: Loop) -> bool:
        """Run ``loop()`` in a task unless one still runs; True when this started it."""
        if self.running:
            return False
        self._task = asyncio.create_task(loop(), name=self.name)
        self._task.add_done_callback(self._ended)
        return True

    def cancel(self) -> None:
        """Ask the loop to stop without waiting for it (``stop`` waits)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self, *, grace_s: float = 0.0) -> None:
        """Give the loop ``grace_s`` to end by itself (the caller told it to), then cancel
        it and wait until it has ended; it may be started again after. A cancellation of
        the caller itself is not swallowed."""
        task, self._task = self._task, None
        if task is not None:
            await _stop((task,), grace_s)

    def _ended(self, task: asyncio.Task[None]) -> None:
        _log_failure(task, self.name)


async def stop_all(tasks: Collection[asyncio.Task[Any]], *, grace_s: float = 0.0) -> None:
    """Stop one-shot background tasks as :meth:`Background.stop` stops a loop: a grace
    to end by themselves, then cancelled and waited for; an error one died of is logged."""
    tasks = tuple(tasks)
    await _stop(tasks, grace_s)
    for task in tasks:
        _log_failure(task, task.get_name())


async def _stop(tasks: Collection[asyncio.Task[Any]], grace_s: float) -> None:
    if not tasks:
        return
    if grace_s > 0 and not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=grace_s)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def _log_failure(task: asyncio.Task[Any], name: str) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed", name, exc_info=exc)
