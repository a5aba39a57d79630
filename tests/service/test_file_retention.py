"""Maintenance and files: attachments of charts that are gone are deleted with their
objects, in the same pass that expires the charts; files count in the store size."""

from __future__ import annotations

import dataclasses

import pytest

from tests.asgi import sim_client
from tsgate.api.files import object_key
from tsgate.database import StoredFile
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
DAY_MS = 86_400_000
NOW_MS = 1_760_000_000_000


def stored(file_id: str, scope: str, chart_id: str | None, size: int) -> StoredFile:
    return StoredFile(
        file_id,
        scope,
        "demo_campus",
        chart_id,
        "f.csv",
        "text/csv",
        size,
        "0" * 64,
        object_key(file_id),
        NOW_MS,
    )


async def test_attachments_of_expired_and_deleted_charts_go_with_them(settings: Settings) -> None:
    conf = dataclasses.replace(settings, maintenance_interval_s=0, chart_ttl_s=30 * 86_400)
    async with open_services(conf, upstream=sim_client(create_simulator(seed=1))) as services:
        db, objects = services.database, services.objects
        config = {"site": "demo_campus", "points": ["p"]}
        kept = await db.charts.create("s", "kept", config, NOW_MS)
        expiring = await db.charts.create("s", "old", config, NOW_MS - 40 * DAY_MS)
        deleted = await db.charts.create("s", "deleted", config, NOW_MS)
        files = {
            "a" * 24: kept.id,
            "b" * 24: expiring.id,
            "c" * 24: deleted.id,
            "d" * 24: None,  # a site's file: no chart to outlive
        }
        for file_id, chart_id in files.items():
            await objects.put(object_key(file_id), b"x" * 10)
            await db.files.insert(stored(file_id, "s", chart_id, 10))
        assert await db.charts.delete("s", deleted.id)

        report = await services.maintenance.run(NOW_MS)
        left = {f.id for f in await db.files.list()}
        keys = [info.key async for info in objects.list("files/")]
    assert report.charts_expired == 1 and report.files_removed == 2
    assert left == {"a" * 24, "d" * 24}
    assert keys == [object_key("a" * 24), object_key("d" * 24)]
    assert (report.files, report.file_bytes) == (2, 20)
    assert report.store_bytes == report.chunk_bytes + report.job_result_bytes + 20
