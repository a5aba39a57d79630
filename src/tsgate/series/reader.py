"""The read policy: where a (site, points, range) read is answered from.

This first version reads straight from upstream (per-point reads in parallel); the
chunk cache slots in here without changing any caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tsgate.series.model import Series
from tsgate.upstream.base import Upstream


@dataclass
class ReadStats:
    """What one read cost, for response headers."""

    upstream_requests: int = 0
    samples: int = 0
    sources: set[str] = field(default_factory=set)


class SeriesReader:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def read(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> tuple[dict[str, Series], ReadStats]:
        """Raw samples of ``names`` in ``[start_ms, end_ms)``; unknown points come back empty."""
        before = self.upstream.counters.requests
        found = await self.upstream.points_series(names, start_ms, end_ms, token=token)
        stats = ReadStats(upstream_requests=self.upstream.counters.requests - before)
        stats.samples = sum(len(s) for s in found.values())
        stats.sources.add("ORIGIN")
        return found, stats

    async def aclose(self) -> None:
        return None
