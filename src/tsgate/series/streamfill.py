"""A cold read's site stream as it arrives: what its pages hold so far and how far they reach.

The site's paginated stream lists each sweep's rows, sweep after sweep. Once a page has
arrived, every sample of a sweep slot before the slot of its last row has arrived too,
so the part of the range before that slot (the *watermark*) can be answered from the
pages already here while the rest is still being fetched (and, once it has all arrived,
written to the chunks). Until then a point is answered only once the stream has carried
it: a planned point the stream never carries is read per point after it, and answered
from here once those reads cover the span (``read_alone``), before anything is stored.

Nothing here is stored: the fetch writes through the chunk store as any other, and a
stream that fails leaves no chunk behind; what was answered from it before the failure
was upstream's own data.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

from tsgate.core import extents
from tsgate.core.model import Series, concat
from tsgate.series.chunkwriter import Fetched
from tsgate.series.index import Range

SLOT_MS = 300_000  # the sweep slot of a row is its time floored to this
# the fetch's store waits until no page has been cut from the stream for this long (the
# pages being read have been answered: its CPU work does not slow them), at most MOST_S
QUIET_S = 0.5
QUIET_MOST_S = 10.0


class StreamFill:
    """The pages of one site stream over ``span`` as they arrive (``feed``), until ``finish``."""

    def __init__(self, span: Range) -> None:
        self.span = span
        self.watermark_ms = span[0]  # every sample before this has arrived
        self.trusted = True  # pages arrived in sweep order, for this span only
        self.finished = False
        self.error: Exception | None = None  # the fetch failed: what waits gets this
        self.samples = 0
        self._pages: list[tuple[int, int, dict[str, Series]]] = []  # first, last, series
        self._seen: set[str] = set()
        self._alone: dict[str, list[Range]] = {}  # spans read per point so far
        self._cut_at = -math.inf  # when a window was last cut from here (monotonic s)
        self._tick = asyncio.Event()

    def feed(self, span: Range, batch: dict[str, Series] | None) -> None:
        """One upstream page of the stream over ``span`` as decoded per point, or ``None``
        once every page of it has arrived."""
        if self.finished:
            return
        # the fetch plans its own span under its locks: the same start, and an end no
        # earlier than planned here (a range reaching "now" ends a little later there)
        if span[0] != self.span[0] or span[1] < self.span[1]:
            self.trusted = False  # another fetch than the one planned: wait for its end
        elif batch is None:
            self.watermark_ms = self.span[1]
        else:
            parts = {n: s for n, s in batch.items() if len(s)}
            if parts:
                first = min(int(s.t_ms[0]) for s in parts.values())
                last = max(int(s.t_ms[-1]) for s in parts.values())
                if first < self.watermark_ms:
                    self.trusted = False  # out of sweep order: the watermark means nothing
                self._pages.append((first, last, parts))
                self._seen.update(parts)
                self.samples += sum(len(s) for s in parts.values())
                reached = min(self.span[1], last - last % SLOT_MS)
                self.watermark_ms = max(self.watermark_ms, reached)
        self._wake()

    def read_alone(self, fetched: Sequence[Fetched]) -> None:
        """Per-point reads of points the stream did not carry, after its end: a point is
        answered from here once its reads cover the whole span."""
        if self.finished or not self.trusted or self.watermark_ms < self.span[1]:
            return
        parts = {f.point: f.series for f in fetched if len(f.series)}
        if parts:
            first = min(int(s.t_ms[0]) for s in parts.values())
            last = max(int(s.t_ms[-1]) for s in parts.values())
            self._pages.append((first, last, parts))
            self.samples += sum(len(s) for s in parts.values())
        for f in fetched:
            spans = self._alone.setdefault(f.point, [])
            spans.append(f.span)
            if not extents.subtract(self.span, spans):
                self._seen.add(f.point)
        self._wake()

    def failed(self, error: Exception) -> None:
        """The fetch failed (its stream's points may still be being written): a page
        waiting for what has not arrived gets ``error`` at once."""
        if self.error is None:
            self.error = error
        self._wake()

    def finish(self) -> None:
        """The fetch is over (done or failed): nothing more arrives; the pages are let go."""
        self.finished = True
        self._pages.clear()
        self._wake()

    def covers(self, names: Sequence[str], hi: int) -> bool:
        """Whether the pages here answer ``names`` up to ``hi`` whole."""
        return (
            self.trusted
            and not self.finished
            and hi <= self.watermark_ms
            and self._seen.issuperset(names)
        )

    async def wait(self, names: Sequence[str], hi: int) -> bool:
        """Wait until the pages answer ``names`` up to ``hi`` (True) or the fetch is over."""
        while True:
            tick = self._tick
            if self.covers(names, hi):
                return True
            if self.finished or not self.trusted or self.error is not None:
                return False
            await tick.wait()

    async def until_finished(self) -> None:
        while not self.finished:
            await self._tick.wait()

    async def quiet(self) -> None:
        """Until no window has been cut from here for :data:`QUIET_S`, or the fill is
        over (at most :data:`QUIET_MOST_S`)."""
        deadline = time.monotonic() + QUIET_MOST_S
        while not self.finished and (now := time.monotonic()) < deadline:
            idle_s = now - self._cut_at
            if idle_s >= QUIET_S:
                return
            await asyncio.sleep(min(QUIET_S - idle_s, deadline - now))

    def cut(self, names: Sequence[str], lo: int, hi: int) -> list[Series]:
        """Each point's samples in ``[lo, hi)`` from the pages here (``covers`` first)."""
        self._cut_at = time.monotonic()
        pages = [p for first, last, p in self._pages if first < hi and last >= lo]
        # each piece cropped first: most windows take one piece of a point, and a piece
        # alone is taken as it is (no copy)
        return [
            concat(n, [s.crop(lo, hi) for p in pages if (s := p.get(n)) is not None]) for n in names
        ]

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
