"""One background loop of this process: started once, stopped by cancelling it (after
a grace to finish by itself, when asked) and waiting for it to end. A loop that dies of
an error has it logged, never lost, whether it ends by itself or while being stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
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
        if task is None:
            return
        if grace_s > 0 and not task.done():
            await asyncio.wait({task}, timeout=grace_s)
        task.cancel()
        await asyncio.wait({task})

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s failed", self.name, exc_info=exc)
