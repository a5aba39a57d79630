"""The stores the domain declares (``PointRows``, ``RollupBlobs``, ``SavedChartStore``,
``FileStore``), run through those Protocols on SQLite and PostgreSQL.

Each test takes the database's repository *as the domain's Protocol*, so it holds the
behaviour the domain relies on, whichever adapter implements it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tsgate.database import Database
from tsgate.files.model import FileStore, StoredFile
from tsgate.series.catalog import PointRows
from tsgate.series.rollupcache import RollupBlobs, RollupRow
from tsgate.series.savedcharts import SavedChartStore

pytestmark = pytest.mark.anyio

HOUR_MS = 3_600_000
JAN_MS = 1_735_689_600_000  # 2025-01-01T00:00Z
FEB_MS = 1_738_368_000_000  # 2025-02-01T00:00Z
MAR_MS = 1_740_787_200_000  # 2025-03-01T00:00Z


def _point(name: str, *, enabled: bool = True, interval: Any = 300) -> dict[str, Any]:
    return {"name": name, "collect_enabled": enabled, "collect_interval": interval}


async def test_point_rows_profiles_objects_and_names_of_known_points(db: Database) -> None:
    rows: PointRows = db.points
    points = [
        _point("s/b"),
        _point("s/a", enabled=False, interval=None),
        _point("s/c", interval=-5),  # not a cadence: None
        _point("s/b", interval=60),  # listed twice: the last object wins, at its last place
    ]
    assert await rows.refreshed_at("s") is None
    await rows.replace_site("s", points, JAN_MS)
    await rows.replace_site("other", [_point("o/x")], JAN_MS + 1)
    assert await rows.refreshed_at("s") == JAN_MS
    assert await rows.profiles("s", ["s/a", "s/b", "s/c", "s/missing", "o/x"]) == {
        "s/a": (False, None),
        "s/b": (True, 60),
        "s/c": (True, None),
    }
    objects = await rows.objects("s", ["s/b", "s/missing"])
    assert objects == {"s/b": points[3]}
    assert await rows.names("s") == ["s/c", "s/b"]
    assert await rows.names("s", collect_enabled_only=False) == ["s/a", "s/c", "s/b"]
    total, page = await rows.list("s", 1, 1)
    assert (total, page) == (3, [points[2]])


async def test_rollup_versions_name_exactly_the_rows_get_returns(db: Database) -> None:
    blobs: RollupBlobs = db.rollups
    written = [
        RollupRow("s", p, level, month, f"{p}{level}{month}".encode(), month + 7)
        for p in ("a", "b")
        for level in ("1h", "1d")
        for month in (JAN_MS, FEB_MS, MAR_MS)
    ]
    await blobs.put(written)
    start, end = JAN_MS + 5 * 24 * HOUR_MS, MAR_MS  # mid-January up to March: two months
    versions = await blobs.versions("s", ["a", "b", "zz"], "1h", start, end)
    rows = await blobs.get("s", ["a", "b", "zz"], "1h", start, end)
    assert sorted(versions) == sorted((r.point, r.period_start_ms, r.updated_at_ms) for r in rows)
    assert [(r.point, r.period_start_ms) for r in rows] == [
        ("a", JAN_MS),
        ("a", FEB_MS),
        ("b", JAN_MS),
        ("b", FEB_MS),
    ]
    assert all(r.blob == f"{r.point}1h{r.period_start_ms}".encode() for r in rows)
    only_feb = await blobs.get("s", ["a"], "1h", start, end, months=[FEB_MS])
    assert [(r.point, r.period_start_ms) for r in only_feb] == [("a", FEB_MS)]


async def test_saved_charts_are_kept_per_scope(db: Database) -> None:
    charts: SavedChartStore = db.charts
    mine = await charts.create("me", "first", {"points": ["a"]}, JAN_MS)
    second = await charts.create("me", "second", {"points": ["b"], "view": "area"}, JAN_MS + 1)
    theirs = await charts.create("them", "theirs", {}, JAN_MS)
    assert len({mine.id, second.id, theirs.id}) == 3
    assert await charts.get("me", mine.id) == mine
    assert await charts.get("them", mine.id) is None  # another scope cannot see it
    assert await charts.count("me") == 2
    assert await charts.list("me", 10) == [second, mine]  # newest first
    assert await charts.list("me", 1) == [second]
    assert await charts.delete("them", mine.id) is False  # nor delete it
    assert await charts.delete("me", mine.id) is True
    assert await charts.delete("me", mine.id) is False
    assert await charts.list("me", 10) == [second]
    # reading records the use: a chart read now is not expired as unused
    assert await charts.get("me", second.id, now_ms=JAN_MS + 2 * HOUR_MS) == second
    assert await db.charts.expire(unused_since_ms=JAN_MS + HOUR_MS) == 1  # theirs
    assert await charts.list("me", 10) == [second]
    assert await charts.count("them") == 0


def _file(file_id: str, scope: str, *, site: str | None, chart: str | None, at: int) -> StoredFile:
    return StoredFile(
        file_id, scope, site, chart, f"{file_id}.csv", "text/csv", 10 + at, "0" * 64, file_id, at
    )


async def test_file_store_filters_usage_and_delete(db: Database) -> None:
    files: FileStore = db.files
    made = [
        _file("f1", "me", site="s", chart=None, at=1),
        _file("f2", "me", site="s", chart="c1", at=2),
        _file("f3", "them", site="s", chart=None, at=3),
        _file("f4", "me", site=None, chart="c1", at=4),
    ]
    for f in made:
        await files.insert(f)
    assert await files.get("f2") == made[1]
    assert await files.get("nope") is None
    assert await files.list(scope="me") == [made[3], made[1], made[0]]
    assert await files.list(scope="me", chart_id="c1") == [made[3], made[1]]
    assert await files.list(site="s", shared_only=True) == [made[2], made[0]]
    assert await files.list(scope="me", limit=1) == [made[3]]
    assert await files.usage("me") == (3, sum(f.size_bytes for f in made if f.scope == "me"))
    assert await files.usage() == (4, sum(f.size_bytes for f in made))
    assert await files.delete("f1") is True
    assert await files.delete("f1") is False
    assert await files.usage("me") == (2, made[1].size_bytes + made[3].size_bytes)
