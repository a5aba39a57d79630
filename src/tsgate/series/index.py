"""The chunk index seam: what the cache knows about each stored period of a point.

The domain owns the row type and the Protocol; ``tsgate.database.chunks`` implements
it in SQL. A row describes one period (a UTC day, or a UTC month once compacted) of one
point:

- ``coverage``: the ranges of the period that upstream has been read for *and* whose
  samples were already visible when they were read (a fetch that ends near "now" trusts
  only what lies more than the look-back before its own time; see ``tail``).
- ``tail_start_ms``/``tail_end_ms``: the untrusted end of the last fetch, served as
  covered only while that fetch is younger than the open TTL, then fetched again.
- ``state``: ``open`` (coverage does not span the period yet), ``provisional`` (the
  period is covered but its samples have holes against the point's cadence, so it is
  re-checked on a schedule, fetching only its ``holes``) or ``final`` (nothing more is
  expected from upstream).
- ``checksum``: of the object's bytes, so a damaged object is recognised and refetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tsgate.core.model import MS_PER_DAY

Range = tuple[int, int]

RAW = "raw"
OPEN = "open"
PROVISIONAL = "provisional"
FINAL = "final"


@dataclass(frozen=True, slots=True)
class ChunkRow:
    site: str
    point: str
    resolution: str  # "raw"
    period_start_ms: int
    period_end_ms: int
    object_key: str  # "" when the period holds no samples
    checksum: str  # of the object's bytes; "" with no object
    coverage: tuple[Range, ...]  # merged, ascending, inside the period
    tail_start_ms: int  # the untrusted end of the last fetch: [tail_start, tail_end)
    tail_end_ms: int
    state: str  # open | provisional | final
    holes: tuple[Range, ...]  # gaps against the point's cadence (provisional only)
    rechecks: int  # re-checks done while provisional
    recheck_at_ms: int | None  # when the next re-check is due (provisional only)
    samples: int
    size_bytes: int
    first_ms: int | None
    last_ms: int | None
    fetched_at_ms: int

    @property
    def final(self) -> bool:
        return self.state == FINAL

    @property
    def day(self) -> bool:
        """A day's period (the other kind: a whole month's)."""
        return self.period_end_ms - self.period_start_ms == MS_PER_DAY

    @property
    def complete(self) -> bool:
        """Coverage spans the whole period."""
        return self.coverage == ((self.period_start_ms, self.period_end_ms),)


def encode_coverage(ranges: Sequence[Range]) -> str:
    """``[(0, 5), (9, 12)]`` → ``"0:5,9:12"`` (what the SQL column holds)."""
    return ",".join(f"{s}:{e}" for s, e in ranges)


def decode_coverage(text: str) -> tuple[Range, ...]:
    if not text:
        return ()
    out: list[Range] = []
    for part in text.split(","):
        start, _, end = part.partition(":")
        out.append((int(start), int(end)))
    return tuple(out)


class ChunkIndex(Protocol):
    """Rows of the chunk index; every write is one transaction."""

    async def overlapping(
        self, site: str, points: Sequence[str], resolution: str, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """Rows of ``points`` overlapping ``[start_ms, end_ms)``, by point then time."""
        ...

    async def swap(self, remove: Sequence[ChunkRow], add: Sequence[ChunkRow]) -> None:
        """Delete ``remove`` (by key) and insert or replace ``add``, atomically."""
        ...

    async def drop_if(self, row: ChunkRow) -> bool:
        """Delete ``row`` only if the index still points at the same object; True if so."""
        ...

    async def due(self, now_ms: int, limit: int) -> list[ChunkRow]:
        """Provisional rows whose re-check is due, oldest first."""
        ...

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """Remove every row overlapping the range (``points=None``: all of ``site``)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Totals: chunks, final, provisional, bytes, samples."""
        ...
