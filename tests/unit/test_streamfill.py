"""The stream as it arrives answers a window only when every sample of it has arrived."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.core.model import Series
from tsgate.series import streamfill
from tsgate.series.chunkwriter import Fetched
from tsgate.series.streamfill import SLOT_MS, StreamFill

START = 1_759_276_800_000  # 2025-10-01T00:00:00Z
NAMES = ["a", "b", "c"]


def _rows(
    sweeps: int, present: list[list[bool]], jitter: list[int]
) -> list[tuple[int, str, float]]:
    """Rows in sweep order, then point order: (time, point, value)."""
    rows = []
    for k in range(sweeps):
        for i, name in enumerate(NAMES):
            if present[k][i]:
                t = START + k * SLOT_MS + 30_000 + jitter[k] * 7 + i
                rows.append((t, name, float(k * 10 + i)))
    return rows


def _page(rows: list[tuple[int, str, float]]) -> dict[str, Series]:
    out: dict[str, Series] = {}
    for name in NAMES:
        mine = [(t, v) for t, n, v in rows if n == name]
        if mine:
            t = np.array([r[0] for r in mine], dtype=np.int64)
            out[name] = Series.from_unsorted(name, t, np.array([r[1] for r in mine]))
    return out


def _truth(
    rows: list[tuple[int, str, float]], name: str, lo: int, hi: int
) -> list[tuple[int, float]]:
    return [(t, v) for t, n, v in rows if n == name and lo <= t < hi]


@settings(max_examples=60, deadline=None)
@given(
    sweeps=st.integers(1, 30),
    data=st.data(),
)
def test_every_window_it_answers_is_the_whole_truth(sweeps: int, data: st.DataObject) -> None:
    present = data.draw(
        st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=sweeps, max_size=sweeps)
    )
    present[0] = [True, True, True]  # every point carried from the start
    jitter = data.draw(st.lists(st.integers(0, 1000), min_size=sweeps, max_size=sweeps))
    rows = _rows(sweeps, present, jitter)
    end = START + sweeps * SLOT_MS
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(rows) - 1)), max_size=8)))
    pages = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True) if b > a]
    fill = StreamFill((START, end))
    for page in pages:
        fill.feed((START, end), _page(page))
        answered = 0
        for hi in range(START + SLOT_MS, end + 1, SLOT_MS):
            if not fill.covers(NAMES, hi):
                continue
            answered += 1
            lo = data.draw(st.integers(START, hi - 1))
            for s in fill.cut(NAMES, lo, hi):
                assert list(zip(s.t_ms.tolist(), s.v.tolist(), strict=True)) == _truth(
                    rows, s.name, lo, hi
                )
        # all that has arrived, before the last row's sweep slot, is answered
        last = page[-1][0]
        assert fill.covers(NAMES, last - last % SLOT_MS) or last - last % SLOT_MS <= START
    assert not fill.covers(NAMES, end)  # the last slot only once the stream says it ended
    fill.feed((START, end), None)
    assert fill.covers(NAMES, end)
    whole = fill.cut(NAMES, START, end)
    for s in whole:
        assert list(zip(s.t_ms.tolist(), s.v.tolist(), strict=True)) == _truth(
            rows, s.name, START, end
        )
    fill.finish()
    assert not fill.covers(NAMES, START + SLOT_MS)


def test_a_point_not_yet_carried_is_not_answered_until_the_end() -> None:
    fill = StreamFill((START, START + 4 * SLOT_MS))
    rows = _rows(3, [[True, True, False]] * 3, [0, 0, 0])
    fill.feed(fill.span, _page(rows))
    assert fill.covers(["a", "b"], START + 2 * SLOT_MS)
    assert not fill.covers(NAMES, START + SLOT_MS)  # "c" may yet come, or be read per point


@pytest.mark.anyio
async def test_pages_out_of_sweep_order_or_of_another_span_answer_nothing() -> None:
    span = (START, START + 10 * SLOT_MS)
    rows = _rows(6, [[True] * 3] * 6, [0] * 6)
    fill = StreamFill(span)
    fill.feed(span, _page(rows[9:]))
    assert fill.covers(NAMES, START + 3 * SLOT_MS)
    fill.feed(span, _page(rows[:9]))  # earlier sweeps after later ones: not trusted
    assert not fill.covers(NAMES, START + SLOT_MS)
    assert not await fill.wait(NAMES, START + SLOT_MS)  # no waiting for what cannot come
    other = StreamFill(span)
    other.feed((START + SLOT_MS, span[1]), _page(rows))  # the fetch planned another span
    assert not other.covers(NAMES, START + SLOT_MS)
    longer = StreamFill(span)
    longer.feed((START, span[1] + 5), _page(rows))  # a range reaching "now", planned later
    assert longer.covers(NAMES, START + 5 * SLOT_MS)


@pytest.mark.anyio
async def test_waiters_wake_when_the_window_arrives_or_the_fetch_ends() -> None:
    span = (START, START + 4 * SLOT_MS)
    rows = _rows(4, [[True] * 3] * 4, [0] * 4)
    fill = StreamFill(span)
    early = asyncio.ensure_future(fill.wait(NAMES, START + 2 * SLOT_MS))
    late = asyncio.ensure_future(fill.wait(NAMES, span[1]))
    await asyncio.sleep(0)
    fill.feed(span, _page(rows[:8]))  # through sweep 2: slots 0 and 1 are whole
    assert await early is True
    assert not late.done()
    fill.finish()  # failed: the waiter learns the stream will not answer it
    assert await late is False


def test_points_the_stream_left_out_are_answered_once_their_reads_cover_the_span() -> None:
    span = (START, START + 4 * SLOT_MS)
    rows = _rows(4, [[True, True, False]] * 4, [0] * 4)  # "c" is not in the stream
    mid = START + 2 * SLOT_MS
    c_t = np.array([START + 40_000, mid + 50_000, mid + 90_000], dtype=np.int64)
    c = Series("c", c_t, np.array([1.0, 2.0, 3.0]))
    fill = StreamFill(span)
    fill.feed(span, _page(rows))
    fill.read_alone([Fetched("c", span, c)])  # before the stream's end: not taken
    assert not fill.covers(NAMES, START + SLOT_MS)
    fill.feed(span, None)
    assert fill.covers(["a", "b"], span[1]) and not fill.covers(NAMES, span[1])
    fill.read_alone([Fetched("c", (START, mid), c.crop(START, mid))])
    assert not fill.covers(NAMES, START + SLOT_MS)  # half the span read: not yet
    fill.read_alone([Fetched("c", (mid, span[1]), c.crop(mid, span[1]))])
    assert fill.covers(NAMES, span[1])
    for lo, hi in [(START, span[1]), (START + 45_000, mid + 60_000), (mid, mid + 1)]:
        got = {s.name: s for s in fill.cut(NAMES, lo, hi)}
        assert got["c"].t_ms.tolist() == [t for t in c_t.tolist() if lo <= t < hi]
        for name in ("a", "b"):
            assert list(zip(got[name].t_ms.tolist(), got[name].v.tolist(), strict=True)) == (
                _truth(rows, name, lo, hi)
            )
    empty = StreamFill(span)
    empty.feed(span, _page(rows))
    empty.feed(span, None)
    empty.read_alone([Fetched("c", span, Series.empty("c"))])  # read: it has no samples
    assert empty.covers(NAMES, span[1])
    assert len(next(s for s in empty.cut(NAMES, START, span[1]) if s.name == "c")) == 0


@pytest.mark.anyio
async def test_the_store_waits_until_no_page_has_been_cut_for_a_while() -> None:
    span = (START, START + 4 * SLOT_MS)
    fill = StreamFill(span)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await fill.quiet()  # nothing cut yet: at once
    assert loop.time() - began < 0.1
    fill.feed(span, _page(_rows(4, [[True] * 3] * 4, [0] * 4)))
    fill.feed(span, None)
    waiting = asyncio.ensure_future(fill.quiet())
    for _ in range(4):  # pages keep being cut: the store keeps waiting
        fill.cut(NAMES, START, START + SLOT_MS)
        await asyncio.sleep(streamfill.QUIET_S / 2)
        assert not waiting.done()
    await asyncio.wait_for(waiting, streamfill.QUIET_S * 3)
    fill.cut(NAMES, START, START + SLOT_MS)
    fill.finish()  # over: nothing to wait for
    began = loop.time()
    await fill.quiet()
    assert loop.time() - began < 0.1
