"""Contract tests for the database seam, run on SQLite (file, WAL) and PostgreSQL.

Each PostgreSQL test gets its own random schema (``search_path`` in the URL), dropped
afterwards, so runs are independent and parallel runs never collide.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from tsgate.core.kinds import PeriodMode
from tsgate.database import (
    Database,
    RequestStat,
    migrate,
    open_database,
    tables,
)
from tsgate.errors import ConfigError, MissingDependency, StorageError
from tsgate.ops.recorder import StatsRecorder
from tsgate.series.index import ChunkRow
from tsgate.series.rollupcache import RollupRow

pytestmark = pytest.mark.anyio

DAY_MS = 86_400_000
JAN_MS = 1_735_689_600_000  # 2025-01-01T00:00Z
FEB_MS = 1_738_368_000_000  # 2025-02-01T00:00Z
MAR_MS = 1_740_787_200_000  # 2025-03-01T00:00Z


def chunk(point: str, start_ms: int, *, days: int = 1, **changes: Any) -> ChunkRow:
    values: dict[str, Any] = {
        "site": "campus",
        "point": point,
        "resolution": "raw",
        "period_start_ms": start_ms,
        "period_end_ms": start_ms + days * DAY_MS,
        "object_key": f"raw/{point}/{start_ms}",
        "checksum": "c0ffee",
        "coverage": ((start_ms, start_ms + days * DAY_MS),),
        "tail_start_ms": start_ms,
        "tail_end_ms": start_ms,
        "state": "final",
        "holes": (),
        "rechecks": 5,
        "recheck_at_ms": None,
        "samples": 288 * days,
        "size_bytes": 1_000 * days,
        "first_ms": start_ms,
        "last_ms": start_ms + days * DAY_MS - 300_000,
        "fetched_at_ms": start_ms + 2 * DAY_MS,
    }
    values.update(changes)
    return ChunkRow(**values)


def ace_point(i: int) -> dict[str, Any]:
    kind = ("ZoneTemp", "SupplyAirTemp", "DamperPos", "CO2")[i % 4]
    tags = {
        "ZoneTemp": ["zone", "air", "temp", "sensor"],
        "SupplyAirTemp": ["discharge", "air", "temp", "sensor"],
        "DamperPos": ["damper", "cmd"],
        "CO2": ["zone", "co2", "sensor"],
    }[kind]
    unit = {"ZoneTemp": "°F", "SupplyAirTemp": "°F", "DamperPos": "%", "CO2": "ppm"}[kind]
    return {
        "name": f"campus/ahu-{i % 40:02d}/vav-{i:05d}/{kind}",
        "site_id": 7,
        "client_id": 3,
        "marker_tags": tags,
        "kv_tags": {"unit": unit, "floor": str(i % 9)},
        "collect_enabled": i % 3 != 0,
        "collect_interval": 300,
        "bacnet_data": {"object_type": "analogInput", "object_index": i},
    }


# -- opening, schemes, migrations ------------------------------------------------------


async def test_unknown_scheme_is_a_config_error_naming_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as info:
        await open_database("mysql://localhost/tsgate")
    assert "mysql" in info.value.detail
    assert "sqlite://" in info.value.detail
    assert "postgresql://" in info.value.detail


async def test_missing_psycopg_names_the_postgres_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what find_spec sees when absent
    with pytest.raises(MissingDependency) as info:
        await open_database("postgresql://postgres@127.0.0.1:5432/test")
    assert info.value.extra == "postgres"
    assert "tsgate[postgres]" in info.value.detail


async def test_sqlite_file_runs_in_wal_with_tuned_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "tsgate.db"
    db = await open_database(f"sqlite:///{path}", migrate=True)
    async with db, db.sql.read() as conn:
        pragma = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }
    with sqlite3.connect(path) as raw:  # WAL is a property of the file, seen by others too
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_in_memory_sqlite_keeps_data_on_its_one_connection(url: str) -> None:
    async with await open_database(url, migrate=True) as db:
        await db.chunks.swap([], [chunk("p", JAN_MS)])
        assert await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, FEB_MS) == [
            chunk("p", JAN_MS)
        ]
    async with await open_database(url, migrate=True) as fresh:  # nothing persisted
        assert await fresh.chunks.counts() == {
            "chunks": 0,
            "final": 0,
            "provisional": 0,
            "bytes": 0,
            "samples": 0,
        }


async def test_migrate_twice_is_a_no_op_and_matches_the_tables(db_url: str) -> None:
    await migrate(db_url)
    async with await open_database(db_url) as db:
        await db.chunks.swap([], [chunk("p", JAN_MS)])
    await migrate(db_url)
    async with await open_database(db_url, migrate=True) as db:
        assert (await db.chunks.counts())["chunks"] == 1
        async with db.sql.read() as conn:
            version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).all()
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), tables.metadata)
            )
    assert version == [("0014",)]
    assert diff == []


# -- chunk index -----------------------------------------------------------------------


async def test_chunk_swap_replaces_by_primary_key(db: Database) -> None:
    partial = chunk(
        "p",
        JAN_MS,
        state="open",
        coverage=((JAN_MS, JAN_MS + 3_600_000), (JAN_MS + 7_200_000, JAN_MS + 9_000_000)),
        tail_start_ms=JAN_MS + 9_000_000,
        tail_end_ms=JAN_MS + 9_900_000,
    )
    await db.chunks.swap([], [partial])
    assert await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, FEB_MS) == [partial]
    refetched = chunk("p", JAN_MS, samples=300, size_bytes=4_321)
    await db.chunks.swap([partial], [refetched, chunk("q", JAN_MS)])
    rows = await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, JAN_MS + DAY_MS)
    assert rows == [refetched]
    assert await db.chunks.counts() == {
        "chunks": 2,
        "final": 2,
        "provisional": 0,
        "bytes": 4_321 + 1_000,
        "samples": 300 + 288,
    }


async def test_overlapping_returns_only_overlapping_rows_of_the_asked_points(db: Database) -> None:
    days = [chunk(p, JAN_MS + d * DAY_MS) for p in ("a", "b", "c") for d in range(5)]
    others = [
        chunk("a", JAN_MS + DAY_MS, resolution="5min"),
        chunk("a", JAN_MS + DAY_MS, site="other"),
    ]
    await db.chunks.swap([], days + others)
    # [day 1 + 1 ms, day 3) touches day 1 and day 2 only; half-open on both ends.
    rows = await db.chunks.overlapping(
        "campus", ["c", "a", "zz"], "raw", JAN_MS + DAY_MS + 1, JAN_MS + 3 * DAY_MS
    )
    assert [(r.point, r.period_start_ms) for r in rows] == [
        ("a", JAN_MS + DAY_MS),
        ("a", JAN_MS + 2 * DAY_MS),
        ("c", JAN_MS + DAY_MS),
        ("c", JAN_MS + 2 * DAY_MS),
    ]
    assert await db.chunks.overlapping("campus", ["a"], "raw", JAN_MS + 5 * DAY_MS, FEB_MS) == []
    assert await db.chunks.overlapping("campus", [], "raw", JAN_MS, FEB_MS) == []


async def test_overlapping_handles_more_points_than_one_in_list(db: Database) -> None:
    names = [f"pt-{i:04d}" for i in range(1_234)]
    await db.chunks.swap([], [chunk(n, JAN_MS) for n in names])
    rows = await db.chunks.overlapping("campus", [*names[::-1], "absent"], "raw", JAN_MS, FEB_MS)
    assert [r.point for r in rows] == names


async def test_swap_replaces_day_rows_by_the_month_row(db: Database) -> None:
    days = [chunk("p", JAN_MS + d * DAY_MS) for d in range(31)]
    await db.chunks.swap([], [*days, chunk("q", JAN_MS)])
    month = chunk("p", JAN_MS, days=31, object_key="raw/p/2025-01")
    await db.chunks.swap(days, [month])
    assert await db.chunks.overlapping("campus", ["p", "q"], "raw", JAN_MS, FEB_MS) == [
        month,
        chunk("q", JAN_MS),
    ]


async def test_swap_is_atomic_when_the_insert_fails(db: Database) -> None:
    days = [chunk("p", JAN_MS + d * DAY_MS) for d in range(3)]
    await db.chunks.swap([], days)
    broken = chunk("p", JAN_MS, period_end_ms=JAN_MS)  # violates period_end > period_start
    with pytest.raises(StorageError) as info:
        await db.chunks.swap(days, [broken])
    assert isinstance(info.value.__cause__, IntegrityError)
    assert await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, FEB_MS) == days


async def test_delete_returns_exactly_the_removed_rows(db: Database) -> None:
    rows = [chunk(p, JAN_MS + d * DAY_MS) for p in ("a", "b", "c") for d in range(4)]
    five_min = chunk("a", JAN_MS + DAY_MS, resolution="5min")
    await db.chunks.swap([], [*rows, five_min])
    removed = await db.chunks.delete("campus", ["a", "b"], JAN_MS + DAY_MS, JAN_MS + 2 * DAY_MS)
    assert removed == [five_min, chunk("a", JAN_MS + DAY_MS), chunk("b", JAN_MS + DAY_MS)]
    assert len(await db.chunks.overlapping("campus", ["a", "b", "c"], "raw", JAN_MS, FEB_MS)) == 10
    everything = await db.chunks.delete("campus", None, JAN_MS, FEB_MS)
    assert len(everything) == 10
    assert {r.point for r in everything} == {"a", "b", "c"}
    assert await db.chunks.counts() == {
        "chunks": 0,
        "final": 0,
        "provisional": 0,
        "bytes": 0,
        "samples": 0,
    }
    assert await db.chunks.delete("campus", None, JAN_MS, FEB_MS) == []


async def test_drop_if_removes_a_row_only_while_it_names_the_same_object(db: Database) -> None:
    old = chunk("p", JAN_MS, object_key="raw/p/old")
    await db.chunks.swap([], [old])
    new = chunk("p", JAN_MS, object_key="raw/p/new")
    await db.chunks.swap([old], [new])
    assert not await db.chunks.drop_if(old)  # a writer moved on: the new row stays
    assert await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, FEB_MS) == [new]
    assert await db.chunks.drop_if(new)
    assert await db.chunks.overlapping("campus", ["p"], "raw", JAN_MS, FEB_MS) == []


async def test_due_lists_provisional_rows_whose_recheck_time_came(db: Database) -> None:
    def provisional(point: str, due_ms: int) -> ChunkRow:
        return chunk(
            point,
            JAN_MS,
            state="provisional",
            holes=((JAN_MS + 3_600_000, JAN_MS + 7_200_000),),
            rechecks=1,
            recheck_at_ms=due_ms,
        )

    rows = [provisional("late", FEB_MS), provisional("soon", JAN_MS + 2 * DAY_MS)]
    await db.chunks.swap([], [*rows, chunk("final", JAN_MS)])
    assert await db.chunks.due(JAN_MS, 10) == []
    assert await db.chunks.due(FEB_MS, 10) == [rows[1], rows[0]]  # oldest first
    assert await db.chunks.due(FEB_MS, 1) == [rows[1]]
    counts = await db.chunks.counts()
    assert (counts["final"], counts["provisional"]) == (1, 2)


async def test_concurrent_writers_and_readers_all_succeed(db_url: str) -> None:
    # Two handles on one database, like two server processes sharing the file.
    async with (
        await open_database(db_url, migrate=True) as one,
        await open_database(db_url) as two,
    ):

        async def work(db: Database, i: int) -> None:
            await db.chunks.swap([], [chunk(f"p{i}", JAN_MS + d * DAY_MS) for d in range(10)])
            await db.chunks.overlapping("campus", [f"p{i}"], "raw", JAN_MS, FEB_MS)
            await db.stats.record([RequestStat(JAN_MS, "/x", 200, 1.0, 1, 1, "MISS")])

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(work, one if i % 2 else two, i)
        assert await one.chunks.counts() == {
            "chunks": 200,
            "final": 200,
            "provisional": 0,
            "bytes": 200_000,
            "samples": 57_600,
        }
        assert (await two.stats.summary(0))["count"] == 20


# -- point catalog ---------------------------------------------------------------------


@pytest.fixture
async def catalog(db: Database) -> list[dict[str, Any]]:
    generated = [ace_point(i) for i in range(7_000)]
    await db.points.replace_site("campus", generated, now_ms=JAN_MS)
    await db.points.replace_site("other", [ace_point(1)], now_ms=FEB_MS)
    return generated


async def test_catalog_list_pages_in_upstream_order_with_totals(
    db: Database, catalog: list[dict[str, Any]]
) -> None:
    assert catalog != sorted(catalog, key=lambda p: p["name"])  # upstream's order is its own
    total, first = await db.points.list("campus", offset=0, limit=100)
    assert total == 7_000
    assert first == catalog[:100]
    total, last = await db.points.list("campus", offset=6_950, limit=100)
    assert total == 7_000
    assert last == catalog[6_950:]
    assert await db.points.list("campus", offset=7_000, limit=100) == (7_000, [])
    assert await db.points.list("nowhere", offset=0, limit=10) == (0, [])


async def test_catalog_search_by_substring_and_all_tags(
    db: Database, catalog: list[dict[str, Any]]
) -> None:
    by_name = sorted(catalog, key=lambda p: p["name"])  # search answers in name order
    found = await db.points.search("campus", "VAV-001", ["Air", "temp"], limit=1_000)
    expected = [
        p
        for p in by_name
        if "vav-001" in p["name"].lower() and {"air", "temp"} <= set(p["marker_tags"])
    ]
    assert found == expected
    assert len(expected) == 50
    assert len(await db.points.search("campus", "", ["co2"], limit=10_000)) == 1_750
    assert (
        await db.points.search("campus", "vav-0", ["co2"], limit=3)
        == [p for p in by_name if "co2" in p["marker_tags"]][:3]
    )
    assert await db.points.search("campus", "50%_", [], limit=10) == []  # LIKE chars are literal
    assert await db.points.search("campus", "vav", ["temp", "damper"], limit=10) == []


async def test_catalog_names_refresh_and_replacement(
    db: Database, catalog: list[dict[str, Any]]
) -> None:
    assert await db.points.refreshed_at("campus") == JAN_MS
    assert await db.points.refreshed_at("nowhere") is None
    collecting = await db.points.names("campus")
    assert collecting == [p["name"] for p in catalog if p["collect_enabled"]]  # upstream's order
    assert len(await db.points.names("campus", collect_enabled_only=False)) == 7_000
    await db.points.replace_site("campus", [ace_point(8), ace_point(9)], now_ms=MAR_MS)
    assert await db.points.names("campus", collect_enabled_only=False) == [
        ace_point(8)["name"],
        ace_point(9)["name"],
    ]
    assert await db.points.refreshed_at("campus") == MAR_MS
    assert await db.points.names("other") == [ace_point(1)["name"]]  # other sites untouched


async def test_catalog_lifts_unit_and_tags_into_columns(db: Database) -> None:
    await db.points.replace_site("campus", [ace_point(7), {"name": "bare"}], now_ms=JAN_MS)
    t = tables.points
    query = sa.select(t.c.name, t.c.unit, t.c.tags, t.c.collect_enabled).order_by(t.c.name)
    async with db.sql.read() as conn:
        rows = [tuple(r) for r in await conn.execute(query)]
    assert rows == [
        ("bare", None, "  ", False),
        (ace_point(7)["name"], "ppm", " zone co2 sensor ", True),
    ]


# -- observed modes and cadences ------------------------------------------------------


async def test_period_cadences_judge_the_range_asked_and_follow_rewrites(db: Database) -> None:
    """Each stored period keeps the cadence it showed; a range is judged by the periods
    over it (the nearest when none is), and a period written again with another cadence
    replaces it; periods older than four weeks before the latest are kept for that."""
    minute = 60_000
    polled = [
        PeriodMode("fan", JAN_MS + d * DAY_MS, JAN_MS + (d + 1) * DAY_MS, "sampled", 5 * minute)
        for d in range(3)
    ]
    await db.modes.put("campus", polled, now_ms=JAN_MS)
    beating = PeriodMode("fan", MAR_MS, MAR_MS + DAY_MS, "sampled", 60 * minute)
    await db.modes.put("campus", [beating], now_ms=MAR_MS)
    early = (JAN_MS + DAY_MS, JAN_MS + DAY_MS + 3_600_000)
    assert await db.modes.cadences("campus", ["fan", "none"], early) == {"fan": 5 * minute}
    assert await db.modes.cadences("campus", ["fan"], (MAR_MS, MAR_MS + 1)) == {"fan": 60 * minute}
    # between them, nearer the March day
    assert await db.modes.cadences("campus", ["fan"], (MAR_MS - DAY_MS, MAR_MS - 1)) == {
        "fan": 60 * minute
    }
    # a period that shows a mode but no cadence (changes break the beat) judges none
    await db.modes.put("campus", [polled[1]._replace(cadence_ms=None)], now_ms=MAR_MS)
    assert await db.modes.cadences("campus", ["fan"], early) == {}
    await db.modes.put("campus", [polled[1]._replace(cadence_ms=2 * minute)], now_ms=MAR_MS)
    assert await db.modes.cadences("campus", ["fan"], early) == {"fan": 2 * minute}
    # a period showing nothing removes what it showed before
    await db.modes.put("campus", [polled[1]._replace(mode=None, cadence_ms=None)], now_ms=MAR_MS)
    assert await db.modes.cadences("campus", ["fan"], early) == {"fan": 5 * minute}  # nearest
    assert await db.modes.cadences("other", ["fan"], early) == {}


# -- rollups ---------------------------------------------------------------------------


async def test_rollup_blob_round_trip_is_byte_identical(db: Database) -> None:
    blob = os.urandom(1_048_576)
    before = await db.size_bytes()
    await db.rollups.put([RollupRow("campus", "p", "1h", JAN_MS, blob, JAN_MS)])
    [row] = await db.rollups.get("campus", ["p"], "1h", JAN_MS, FEB_MS)
    assert type(row.blob) is bytes
    assert row.blob == blob
    assert await db.size_bytes() >= before + 1_000_000


async def test_rollup_get_put_delete_by_month(db: Database) -> None:
    months = (JAN_MS, FEB_MS, MAR_MS)
    rows = [RollupRow("campus", p, "1h", m, f"{p}{m}".encode(), 1) for p in "ab" for m in months]
    await db.rollups.put([*rows, RollupRow("campus", "a", "1d", FEB_MS, b"day", 1)])
    # Mid-January to exactly March 1st: January and February, not March.
    got = await db.rollups.get("campus", ["a"], "1h", JAN_MS + 10 * DAY_MS, MAR_MS)
    assert got == [rows[0], rows[1]]
    newer = RollupRow("campus", "a", "1h", FEB_MS, b"\x00" * 10, 2)
    await db.rollups.put([newer])
    assert await db.rollups.get("campus", ["a", "b"], "1h", FEB_MS, FEB_MS + 1) == [newer, rows[4]]
    assert await db.rollups.delete("campus", ["a"], FEB_MS, MAR_MS) == 2  # both levels
    assert await db.rollups.get("campus", ["a"], "1d", JAN_MS, MAR_MS) == []
    assert await db.rollups.delete("campus", None, JAN_MS, MAR_MS + DAY_MS) == 5
    assert await db.rollups.get("campus", ["a", "b"], "1h", JAN_MS, MAR_MS + DAY_MS) == []


# -- request statistics and probes -----------------------------------------------------


async def test_request_stats_summary_and_trim(db: Database) -> None:
    stats = [
        RequestStat(JAN_MS + i, "/api/timeseries", 200, 1.5, 100, 2_000, "HIT" if i % 2 else "MISS")
        for i in range(10)
    ]
    await db.stats.record(
        [*stats, RequestStat(JAN_MS - 1, "/api/sites", 404, 0.2, 0, 50, "BYPASS")]
    )
    assert await db.stats.summary(since_ms=JAN_MS) == {
        "count": 10,
        "by_cache_status": {"HIT": 5, "MISS": 5},
        "samples": 1_000,
        "bytes_out": 20_000,
    }
    assert await db.stats.trim(before_ms=JAN_MS + 4) == 5
    assert await db.stats.summary(since_ms=0) == {
        "count": 6,
        "by_cache_status": {"HIT": 3, "MISS": 3},
        "samples": 600,
        "bytes_out": 12_000,
    }
    assert await db.stats.trim(before_ms=JAN_MS + 4) == 0


class _FailingOnce:
    """A stats table whose first write fails, as a database away for a moment."""

    def __init__(self, table: Any) -> None:
        self.table, self.failed = table, False

    async def record(self, rows: Any) -> None:
        if not self.failed:
            self.failed = True
            raise StorageError("away")
        await self.table.record(rows)


async def test_grouped_requests_count_as_each_request_would(db: Database) -> None:
    """The recorder keeps one row per second, route, status and cache status; what the
    stats and the monitor read back equals what the requests themselves add up to, also
    when a write fails and the groups held meanwhile grow."""
    rand = random.Random(7)
    told = [
        RequestStat(
            JAN_MS + rand.randrange(5_000), rand.choice(["/api/a", "/api/b"]),
            rand.choice([200, 200, 304, 404, 503]), rand.random(), rand.randrange(100),
            rand.randrange(10_000), rand.choice(["HIT:MEMORY", "MISS", "BYPASS"]),
        )
        for _ in range(2_000)
    ]  # fmt: skip
    table = _FailingOnce(db.stats)
    recorder = StatsRecorder(table, flush_s=0)  # type: ignore[arg-type]
    for stat in told[:1_000]:
        recorder.add(stat)
    with pytest.raises(StorageError):
        await recorder.flush()
    for stat in told[1_000:]:
        recorder.add(stat)
    assert await recorder.flush() == 2_000
    assert await recorder.flush() == 0
    rows = await db.stats.trim(before_ms=0)  # nothing that old: nothing goes
    assert rows == 0

    for since in (0, JAN_MS, JAN_MS + 1_000, JAN_MS + 3_000, JAN_MS + 5_000):
        counted = [s for s in told if s.at_ms - s.at_ms % 1_000 >= since]
        by_status: dict[str, int] = {}
        for s in counted:
            by_status[s.cache_status] = by_status.get(s.cache_status, 0) + 1
        assert await db.stats.summary(since) == {
            "count": len(counted),
            "by_cache_status": by_status,
            "samples": sum(s.samples for s in counted),
            "bytes_out": sum(s.bytes_out for s in counted),
        }
        failed = sum(1 for s in counted if s.status >= 500)
        assert await db.monitor.request_errors(since) == (len(counted), failed)
    async with db.sql.read() as conn:
        query = sa.select(sa.func.count()).select_from(tables.request_stats)
        stored = (await conn.execute(query)).scalar()
    assert stored is not None and stored <= 5 * 2 * 5 * 3  # seconds × routes × statuses × caches


async def test_ping_and_size(db: Database) -> None:
    latency_s = await db.ping()
    assert 0 < latency_s < 5
    assert await db.size_bytes() > 0
