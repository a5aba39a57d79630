"""A prepared read narrowed to a part of its span: the rows of that part, or nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tsgate.core.model import MS_PER_DAY
from tsgate.series.index import FINAL, RAW, ChunkRow
from tsgate.series.planning import PreparedRead, plan_fetches

DAY0 = 1_759_276_800_000  # 2025-10-01T00:00Z


def day_row(point: str, day: int) -> ChunkRow:
    start = DAY0 + day * MS_PER_DAY
    end = start + MS_PER_DAY
    return ChunkRow(
        "s", point, RAW, start, end, "k", "c", ((start, end),), start, start, FINAL, (), 0,
        None, 1, 1, start, start, end,
    )  # fmt: skip


spans = st.tuples(st.integers(0, 10 * MS_PER_DAY), st.integers(1, 10 * MS_PER_DAY)).map(
    lambda t: (DAY0 + t[0], DAY0 + t[0] + t[1])
)


@given(st.sets(st.integers(0, 9), min_size=1), spans, spans)
def test_within_keeps_exactly_the_rows_of_the_part_and_only_when_nothing_is_missing(
    days: set[int], span: tuple[int, int], part: tuple[int, int]
) -> None:
    rows = [day_row("p", d) for d in sorted(days)]
    now = DAY0 + 400 * MS_PER_DAY  # long after: every stored day is final
    plan = plan_fetches(["p"], rows, *span, now, 60_000)
    ready = PreparedRead("s", ("p",), *span, rows, plan, now)
    narrowed = ready.within(*part)
    inside = span[0] <= part[0] < part[1] <= span[1]
    if plan or not inside:
        assert narrowed is None
        return
    assert narrowed is not None and narrowed.serves("s", ["p"], *part)
    assert narrowed.rows == [
        r for r in rows if r.period_start_ms < part[1] and r.period_end_ms > part[0]
    ]
    # nothing missing over the span: nothing missing over the part either (an independent
    # plan of the part from every row agrees)
    assert plan_fetches(["p"], rows, *part, now, 60_000) == {} == narrowed.plan
    assert narrowed.missing_samples == 0
