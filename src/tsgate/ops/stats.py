"""Request statistics as operations see them: a record of the requests served in one
second with the same route, status and cache status, the groups ``/api/stats`` reports,
and the table that keeps them (a Protocol the database implements as
``tsgate.database.stats.RequestStats``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RequestStat:
    """``requests`` requests (one, as a request is told) and the totals of their
    ``duration_ms``, ``samples`` and ``bytes_out``."""

    at_ms: int
    route: str
    status: int
    duration_ms: float
    samples: int
    bytes_out: int
    cache_status: str  # HIT | PARTIAL | MISS | BYPASS | …
    requests: int = 1


@dataclass(frozen=True, slots=True)
class RequestGroup:
    cache_status: str
    count: int
    samples: int
    bytes_out: int


class StatsTable(Protocol):
    async def record(self, rows: Sequence[RequestStat]) -> None:
        """Append ``rows`` in one transaction (callers group them and flush in batches)."""
        ...

    async def trim(self, before_ms: int) -> int:
        """Delete records made before ``before_ms``; return how many rows went."""
        ...

    async def groups(self, since_ms: int) -> list[RequestGroup]:
        """Requests since ``since_ms`` grouped by their recorded cache status."""
        ...
