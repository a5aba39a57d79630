"""Request statistics written in batches: requests only append to a buffer, and a
background task flushes it to the database every few seconds (and on close)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from tsgate.background import Background
from tsgate.errors import StorageError
from tsgate.ops.stats import RequestStat, StatsTable

log = logging.getLogger("tsgate.stats")

MAX_BUFFERED = 50_000  # while the database is away, the oldest rows go first


class StatsRecorder:
    def __init__(self, stats: StatsTable, *, flush_s: float) -> None:
        self._stats = stats
        self._flush_s = flush_s
        self._buffer: deque[RequestStat] = deque(maxlen=MAX_BUFFERED)
        self._lock = asyncio.Lock()
        self._task = Background("tsgate-stats-flush")

    def add(self, stat: RequestStat) -> None:
        self._buffer.append(stat)

    def start(self) -> None:
        if self._flush_s > 0:
            self._task.start(self._run)

    async def flush(self) -> int:
        """Write what is buffered; return how many rows were written. On failure the
        rows stay buffered and the error is raised."""
        async with self._lock:
            rows = list(self._buffer)
            if not rows:
                return 0
            await self._stats.record(rows)
            for _ in rows:
                self._buffer.popleft()
            return len(rows)

    async def aclose(self) -> None:
        await self._task.stop()
        try:
            await self.flush()
        except StorageError as exc:
            log.warning("request stats lost on shutdown: %s", exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except StorageError as exc:
                log.warning("request stats not written yet: %s", exc)
