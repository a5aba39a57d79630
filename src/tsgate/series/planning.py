"""What to fetch: the cache policy, and the spans of each point no earlier read fetched."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsgate.series import extents
from tsgate.series.model import MS_PER_DAY

if TYPE_CHECKING:
    from tsgate.database.chunks import ChunkRow

Range = tuple[int, int]
SAMPLE_MS = 300_000  # points report about every 5 minutes


@dataclass(frozen=True)
class CachePolicy:
    settle_ms: int = 2 * 3_600_000
    open_ttl_ms: int = 60_000
    site_stream_min_points: int = 40  # from this many points, read the site's stream
    site_page_size: int = 50000
    upstream_concurrency: int = 8
    fetch_lock_ttl_s: float = 120.0  # a shared fetch lock lapses after this (crashed holder)


def plan_fetches(
    names: Sequence[str],
    rows: Sequence[ChunkRow],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    open_ttl_ms: int,
) -> dict[str, list[Range]]:
    """Per point, the spans to fetch (whole days, or the tail of a stale open day)."""
    by_point: dict[str, list[ChunkRow]] = defaultdict(list)
    for row in rows:
        by_point[row.point].append(row)
    plan: dict[str, list[Range]] = {}
    for name in names:
        spans = list(_missing(by_point.get(name, []), start_ms, end_ms, now_ms, open_ttl_ms))
        if spans:
            plan[name] = extents.merge(spans)
    return plan


def _missing(
    rows: Sequence[ChunkRow], start_ms: int, end_ms: int, now_ms: int, open_ttl_ms: int
) -> Iterator[Range]:
    """Spans to fetch. A chunk covers ``[period_start, covered_end)``; one fetched up to
    "now" less than ``open_ttl`` ago counts as covering its whole period (bounded
    staleness for live dashboards). A fetch continues a chunk from its covered end, so
    chunks stay contiguous, and stops where the request stops (delta fetches)."""
    have: list[Range] = []
    partial: dict[int, ChunkRow] = {}
    for r in rows:
        live = r.covered_end_ms >= r.fetched_at_ms and now_ms - r.fetched_at_ms <= open_ttl_ms
        have.append((r.period_start_ms, r.period_end_ms if r.sealed or live else r.covered_end_ms))
        if not r.sealed:
            partial[r.period_start_ms] = r
    for gap_start, gap_end in extents.subtract((start_ms, end_ms), extents.merge(have)):
        for day in extents.days_covering(gap_start, gap_end):
            row = partial.get(day)
            begin = row.covered_end_ms if row is not None else day
            stop = min(day + MS_PER_DAY, gap_end, now_ms + 1)
            if stop > begin:
                yield (begin, stop)
