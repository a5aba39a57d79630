"""Which months a write makes ready to compact: settled, every day present and final."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY
from tsgate.series.compaction import finished_months
from tsgate.series.index import FINAL, PROVISIONAL, RAW, ChunkRow

OCT = 1_759_276_800_000  # 2025-10-01T00:00:00Z
NOV = extents.next_month(OCT)
DAYS = (NOV - OCT) // MS_PER_DAY
SETTLE = 3 * MS_PER_DAY


def day(point: str, start: int, state: str = FINAL) -> ChunkRow:
    end = start + MS_PER_DAY
    return ChunkRow(
        "s", point, RAW, start, end, "", "", ((start, end),), start, start, state, (),
        0, None, 0, 0, None, None, 0,
    )  # fmt: skip


def month_of(point: str, states: list[str]) -> list[ChunkRow]:
    return [day(point, OCT + i * MS_PER_DAY, s) for i, s in enumerate(states)]


def test_a_settled_month_of_final_days_is_ready_once() -> None:
    rows = month_of("a", [FINAL] * DAYS)
    layout = {"a": rows[:-1]}
    ready = finished_months(layout, rows[-1:], NOV + SETTLE, SETTLE)
    assert ready == [("a", rows)]


def test_an_unsettled_month_waits() -> None:
    rows = month_of("a", [FINAL] * DAYS)
    assert finished_months({"a": rows[:-1]}, rows[-1:], NOV + SETTLE - 1, SETTLE) == []


def test_a_missing_day_or_a_written_month_row_is_not_compacted() -> None:
    rows = month_of("a", [FINAL] * DAYS)
    assert finished_months({"a": rows[1:-1]}, rows[-1:], NOV + SETTLE, SETTLE) == []
    whole = ChunkRow(
        "s", "a", RAW, OCT, NOV, "", "", ((OCT, NOV),), OCT, OCT, FINAL, (),
        0, None, 0, 0, None, None, 0,
    )  # fmt: skip
    assert finished_months({}, [whole], NOV + SETTLE, SETTLE) == []


@given(st.lists(st.sampled_from([FINAL, PROVISIONAL]), min_size=DAYS, max_size=DAYS))
def test_ready_exactly_when_every_day_is_final(states: list[str]) -> None:
    rows = month_of("a", states)
    written = [r for r in rows if r.final][-1:]
    ready = finished_months({"a": rows}, written, NOV + SETTLE, SETTLE)
    assert ready == ([("a", rows)] if all(s == FINAL for s in states) else [])
