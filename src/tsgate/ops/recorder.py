"""Request statistics written in groups: a request only adds itself to the group of its
second, route, status and cache status held in memory, and a background task writes the
groups to the database every few seconds (and on close). Under load this is one row per
group instead of one per request (a few rows a second, not thousands)."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from tsgate.background import Background
from tsgate.errors import StorageError
from tsgate.ops.stats import RequestStat, StatsTable

log = logging.getLogger("tsgate.stats")

BUCKET_MS = 1_000  # a group's time: the start of its second
MAX_GROUPS = 50_000  # while the database is away, the oldest groups go first

_Key = tuple[int, str, int, str]  # (second, route, status, cache status)


class RequestRecorder(Protocol):
    """Where a finished request's statistics go (:class:`StatsRecorder` is it)."""

    def add(self, stat: RequestStat) -> None: ...

    async def flush(self) -> int: ...


class StatsRecorder:
    def __init__(self, stats: StatsTable, *, flush_s: float) -> None:
        self._stats = stats
        self._flush_s = flush_s
        # key -> [requests, duration_ms, samples, bytes_out], oldest first
        self._groups: dict[_Key, list[float]] = {}
        self._lock = asyncio.Lock()
        self._task = Background("tsgate-stats-flush")

    def add(self, stat: RequestStat) -> None:
        key = (stat.at_ms - stat.at_ms % BUCKET_MS, stat.route, stat.status, stat.cache_status)
        self._count(key, stat.requests, stat.duration_ms, stat.samples, stat.bytes_out)

    def _count(self, key: _Key, requests: float, duration_ms: float, samples: float,
               bytes_out: float) -> None:  # fmt: skip
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= MAX_GROUPS:
                del self._groups[next(iter(self._groups))]
            self._groups[key] = [requests, duration_ms, samples, bytes_out]
        else:
            group[0] += requests
            group[1] += duration_ms
            group[2] += samples
            group[3] += bytes_out

    def start(self) -> None:
        if self._flush_s > 0:
            self._task.start(self._run)

    async def flush(self) -> int:
        """Write the groups held; return how many requests they counted. On failure the
        groups stay held (with what was added meanwhile) and the error is raised."""
        async with self._lock:
            groups, self._groups = self._groups, {}
            if not groups:
                return 0
            rows = [
                RequestStat(at, route, status, duration, int(samples), int(out), cache,
                            int(requests))
                for (at, route, status, cache), (requests, duration, samples, out)
                in groups.items()
            ]  # fmt: skip
            try:
                await self._stats.record(rows)
            except BaseException:
                added, self._groups = self._groups, groups
                for key, (requests, duration, samples, out) in added.items():
                    self._count(key, requests, duration, samples, out)
                raise
            return sum(r.requests for r in rows)

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
