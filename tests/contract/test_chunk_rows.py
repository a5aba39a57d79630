"""Chunk index rows read back as the rows written, whatever order a query names the
columns in (rows in the table's order take the positional shortcut)."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.database.chunks import _from_row, _to_row
from tsgate.database.tables import chunks, metadata
from tsgate.series.index import ChunkRow

_MS = st.integers(0, 2**53)
_RANGES = st.lists(st.tuples(_MS, _MS), max_size=3).map(tuple)
_ROWS = st.builds(
    ChunkRow,
    site=st.text(min_size=1, max_size=5),
    point=st.text(min_size=1, max_size=8),
    resolution=st.sampled_from(["raw", "5min"]),
    period_start_ms=st.just(0),
    period_end_ms=st.integers(1, 2**53),
    object_key=st.text(max_size=5),
    checksum=st.text(max_size=5),
    coverage=_RANGES,
    tail_start_ms=_MS,
    tail_end_ms=_MS,
    state=st.sampled_from(["open", "provisional", "final"]),
    holes=_RANGES,
    rechecks=st.integers(0, 9),
    recheck_at_ms=st.none() | _MS,
    samples=st.integers(0, 10**6),
    size_bytes=st.integers(0, 10**9),
    first_ms=st.none() | _MS,
    last_ms=st.none() | _MS,
    fetched_at_ms=_MS,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROWS, min_size=1, max_size=6, unique_by=lambda r: (r.site, r.point, r.resolution)))
def test_rows_read_back_by_position_or_by_name(rows: list[ChunkRow]) -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine, tables=[chunks])
    with engine.begin() as conn:
        conn.execute(sa.insert(chunks), [_to_row(r) for r in rows])
        in_order = [_from_row(r) for r in conn.execute(sa.select(chunks))]
        reordered = sa.select(*reversed(list(chunks.c)))  # the fallback: by column name
        by_name = [_from_row(r) for r in conn.execute(reordered)]
    key = lambda r: (r.site, r.point, r.resolution)  # noqa: E731
    assert sorted(in_order, key=key) == sorted(rows, key=key) == sorted(by_name, key=key)
