"""What to fetch: the cache policy, and the spans of each point the cache cannot answer.

A point's range is answered from its stored periods' *coverage* (ranges fetched and
trusted), plus the *tail* of its last fetch while that fetch is younger than the open
TTL (bounded staleness for live dashboards). Everything else is fetched: gaps no read
asked for yet, tails grown old (so a refresh re-reads the look-back and picks up
samples that became visible late), and the holes of provisional periods whose re-check
is due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY, MS_PER_MINUTE
from tsgate.options import ms
from tsgate.series.index import PROVISIONAL, ChunkRow, Range
from tsgate.series.options import CacheSettings
from tsgate.series.periods import DEFAULT_RECHECKS_MS
from tsgate.upstream.options import UpstreamSettings

__all__ = [
    "SAMPLE_MS",
    "CachePolicy",
    "Range",
    "changes_at",
    "plan_fetches",
    "provisional_spans",
]

SAMPLE_MS = 5 * MS_PER_MINUTE  # points report about every 5 minutes


@dataclass(frozen=True)
class CachePolicy:
    settle_ms: int = 2 * 3_600_000  # months this long past their end may be written whole
    open_ttl_ms: int = 60_000
    lookback_ms: int = 15 * MS_PER_MINUTE  # what a fetch near "now" does not yet trust
    recheck_schedule_ms: tuple[int, ...] = DEFAULT_RECHECKS_MS
    site_stream_min_points: int = 40  # from this many points, read the site's stream
    site_page_size: int = 50000
    upstream_concurrency: int = 8
    point_window_ms: int = 31 * MS_PER_DAY  # one per-point upstream read spans at most this
    # the request cost model's figures until measured (series/fetching.py): upstream's
    # latency per request and its transfer time per sample (the ACE API: ~10 s per
    # 100,000 rows)
    upstream_latency_ms: float = 200.0
    upstream_sample_us: float = 100.0
    max_request_samples: int = 20_000  # one upstream request carries at most about this
    measure_costs: bool = True  # plan by upstream's measured costs once known
    fetch_lock_ttl_s: float = 120.0  # a shared fetch lock lapses after this (crashed holder)

    @classmethod
    def of(cls, cache: CacheSettings, upstream: UpstreamSettings) -> CachePolicy:
        return cls(
            settle_ms=ms(cache.settle_s),
            open_ttl_ms=ms(cache.open_ttl_s),
            lookback_ms=ms(cache.lookback_s),
            recheck_schedule_ms=cache.recheck_schedule_ms(),
            site_stream_min_points=cache.site_stream_min_points,
            site_page_size=upstream.upstream_page_size,
            upstream_concurrency=upstream.upstream_concurrency,
            upstream_latency_ms=upstream.upstream_latency_ms,
            upstream_sample_us=upstream.upstream_sample_us,
            max_request_samples=upstream.upstream_request_samples,
            measure_costs=upstream.upstream_measure_costs,
        )


def plan_fetches(
    names: Sequence[str],
    rows: Sequence[ChunkRow],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    open_ttl_ms: int,
) -> dict[str, list[Range]]:
    """Per point, the merged spans to fetch for ``[start_ms, end_ms)`` at ``now_ms``."""
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
    have: list[Range] = []
    for r in rows:
        have.extend(r.coverage)
        if r.tail_end_ms > r.tail_start_ms and now_ms - r.fetched_at_ms <= open_ttl_ms:
            # a fetch that reached "now" covers the rest of its period until the TTL ends
            reached_now = r.tail_end_ms >= r.fetched_at_ms
            have.append((r.tail_start_ms, r.period_end_ms if reached_now else r.tail_end_ms))
        if r.state == PROVISIONAL and r.recheck_at_ms is not None and r.recheck_at_ms <= now_ms:
            yield from r.holes  # due for a re-check: read its holes again
    stop = min(end_ms, now_ms + 1)  # nothing exists after now
    if stop > start_ms:
        yield from extents.subtract((start_ms, stop), extents.merge(have))


def provisional_spans(
    names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
) -> dict[str, list[Range]]:
    """Per point, the parts of ``[start_ms, end_ms)`` not yet final (their data may still
    change upstream); points whose whole range is final are left out."""
    final: dict[str, list[Range]] = defaultdict(list)
    for r in rows:
        if r.final:
            final[r.point].append((r.period_start_ms, r.period_end_ms))
    out: dict[str, list[Range]] = {}
    for name in names:
        spans = extents.subtract((start_ms, end_ms), extents.merge(final.get(name, [])))
        if spans:
            out[name] = spans
    return out


def changes_at(
    names: Sequence[str],
    rows: Sequence[ChunkRow],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    open_ttl_ms: int,
) -> int | None:
    """The earliest time the samples of ``[start_ms, end_ms)``, as ``rows`` store them,
    could change without the site's data version moving (a repair moves it): when the
    tail of a fetch grows old and is read again (fetch time + the open TTL), when a
    provisional period's next re-check is due, or at once when a read would fetch part of
    the range now. A range reaching past ``now_ms`` changes as samples arrive: at most the
    open TTL. ``None``: every period is final, so only a repair can change them."""
    if plan_fetches(names, rows, start_ms, end_ms, now_ms, open_ttl_ms):
        return now_ms
    soonest: int | None = now_ms + open_ttl_ms if end_ms > now_ms else None
    for r in rows:
        if r.final or r.period_end_ms <= start_ms or r.period_start_ms >= end_ms:
            continue
        candidates = []
        if r.tail_end_ms > r.tail_start_ms or r.state != PROVISIONAL:
            candidates.append(r.fetched_at_ms + open_ttl_ms)
        if r.state == PROVISIONAL and r.recheck_at_ms is not None:
            candidates.append(r.recheck_at_ms)
        for at in candidates:
            soonest = at if soonest is None else min(soonest, at)
    return soonest


@dataclass(frozen=True)
class PreparedRead:
    """A read made ready once: the token's access checked, the index rows of the span
    read once, the fetch plan made and its size estimated. The request that prepared it
    reads through it (``SeriesReader.read(..., prepared=)``) instead of doing it all
    again; a read of another span, or one prepared too long ago, plans afresh."""

    site: str
    names: tuple[str, ...]
    start_ms: int
    end_ms: int  # as asked (the rows and plan stop at the time it was prepared)
    rows: list[ChunkRow]
    plan: dict[str, list[Range]]
    planned_at_ms: int
    # a comparison's earlier span, made ready with this one (under the same access check)
    earlier: PreparedRead | None = None

    @property
    def missing_samples(self) -> int:
        """About how many samples the read still has to fetch (0: the rows answer it).
        Each span counts at least one: a span shorter than a reporting interval (the last
        minutes before now) still has to be fetched."""
        return sum(-(-(e - s) // SAMPLE_MS) for spans in self.plan.values() for s, e in spans)

    @property
    def missing_with_earlier(self) -> int:
        """:attr:`missing_samples`, and the earlier span's when one was prepared with it."""
        earlier = self.earlier.missing_samples if self.earlier else 0
        return self.missing_samples + earlier

    def within(self, start_ms: int, end_ms: int) -> PreparedRead | None:
        """This read narrowed to ``[start_ms, end_ms)`` inside its span, when nothing of
        its span was left to fetch (so none of the part is either); else ``None``."""
        if self.plan or not self.start_ms <= start_ms < end_ms <= self.end_ms:
            return None
        rows = [r for r in self.rows if r.period_start_ms < end_ms and r.period_end_ms > start_ms]
        return PreparedRead(self.site, self.names, start_ms, end_ms, rows, {}, self.planned_at_ms)

    def serves(self, site: str, names: Sequence[str], start_ms: int, end_ms: int) -> bool:
        return (site, tuple(names), start_ms, end_ms) == (
            self.site,
            self.names,
            self.start_ms,
            self.end_ms,
        )


PREPARED_FOR_MS = 1_000  # a prepared read older than this is planned again
