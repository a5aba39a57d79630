"""Re-checks of provisional periods: read their holes again once due.

A period whose samples have holes against the point's cadence may still receive them
(a gateway historian uploading its backlog after an outage). The maintenance pass reads
the holes of every period whose re-check is due, at most one upstream read per point
and hole (holes of one outage across days are joined), merges what arrived, and moves
each period on to its next re-check or to final (``series/periods.py``). A read of a
due period on the request path does the same for the caller's token.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from tsgate.core.model import MS_PER_DAY
from tsgate.errors import TsgateError
from tsgate.series.index import PROVISIONAL, ChunkRow, Range
from tsgate.series.periods import hole_spans
from tsgate.series.reader import SeriesReader
from tsgate.upstream import metering

log = logging.getLogger("tsgate.recheck")

_NEARBY_MS = 8 * MS_PER_DAY  # other provisional periods of a due point, this close


@dataclass
class RecheckCounters:
    passes: int = 0
    periods: int = 0  # provisional periods re-checked
    requests: int = 0  # upstream requests they cost
    repaired: int = 0  # late samples they found
    failures: int = 0


@dataclass(frozen=True)
class RecheckReport:
    periods: int
    points: int
    requests: int
    repaired: int
    failed_sites: tuple[str, ...]


async def _plan(
    reader: SeriesReader, site: str, due: dict[str, list[ChunkRow]]
) -> dict[str, list[Range]]:
    """The holes to read for the due periods: with them, the other provisional periods
    of the same points nearby, since one gateway's backlog fills them all at once (a
    72 h outage spans days whose re-checks fall due at different times)."""
    rows = [r for point_rows in due.values() for r in point_rows]
    lo = min(r.period_start_ms for r in rows) - _NEARBY_MS
    hi = max(r.period_end_ms for r in rows) + _NEARBY_MS
    nearby: dict[str, list[ChunkRow]] = defaultdict(list)
    for row in await reader.rows(site, sorted(due), lo, hi):
        if row.state == PROVISIONAL:
            nearby[row.point].append(row)
    return {point: hole_spans(nearby.get(point) or due[point]) for point in due}


async def recheck_due(
    reader: SeriesReader,
    counters: RecheckCounters,
    *,
    token: str,
    now_ms: int,
    limit: int = 2000,
) -> RecheckReport:
    """Re-check up to ``limit`` due provisional periods with ``token`` (the service's)."""
    due = await reader.store.due(now_ms, limit)
    by_site: dict[str, dict[str, list[ChunkRow]]] = defaultdict(lambda: defaultdict(list))
    for row in due:
        by_site[row.site][row.point].append(row)
    requests = repaired = points = 0
    failed: list[str] = []
    for site, rows_by_point in sorted(by_site.items()):
        plan = await _plan(reader, site, rows_by_point)
        with metering.metered() as meter:
            try:
                async with reader.locks.hold(site, sorted(plan)):
                    report = await reader.fetch_and_store(site, plan, token=token, now_ms=now_ms)
            except TsgateError as exc:
                log.warning(
                    "re-check of %d points of %s failed, will retry: %s", len(plan), site, exc
                )
                failed.append(site)
                counters.failures += 1
                continue
            finally:
                requests += meter.requests
        repaired += report.repaired
        points += len(plan)
    counters.passes += 1
    counters.periods += len(due)
    counters.requests += requests
    counters.repaired += repaired
    if due:
        log.info(
            "re-checked %d provisional periods of %d points: %d upstream requests, %d late samples",
            len(due),
            points,
            requests,
            repaired,
        )
    return RecheckReport(len(due), points, requests, repaired, tuple(failed))


@dataclass
class Rechecker:
    """Due re-checks with the service's upstream token (without one, due periods are
    re-checked by the next read that touches them, with the caller's token)."""

    reader: SeriesReader
    token: str
    counters: RecheckCounters = field(default_factory=RecheckCounters)

    async def run(self, now_ms: int) -> RecheckReport:
        return await recheck_due(self.reader, self.counters, token=self.token, now_ms=now_ms)
