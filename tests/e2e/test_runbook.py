"""The runbook's tested blocks, run as written. Backup and restore: charts, files and answers
made before a backup are the same after wiping everything and restoring it, for the
embedded SQLite database and for PostgreSQL (the objects on the local-file store).
The chunk cache is not in the backup: the restored server fetches it again. The daily
checks run against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.asgi import api_client, live_server, sim_client
from tests.conftest import IN_CI, service_url
from tests.unit.test_file_content import PDF_BYTES, png_bytes
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_range

pytestmark = pytest.mark.anyio
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z: October is settled
ALICE = {"Authorization": "Bearer alice"}
_BLOCK = re.compile(r"<!-- tested: (?P<name>[\w-]+) -->\n```bash\n(?P<body>.*?)```", re.S)


def blocks() -> dict[str, str]:
    return {m["name"]: m["body"] for m in _BLOCK.finditer(RUNBOOK.read_text())}


def simulator() -> Simulator:
    return create_simulator(seed=1, tokens={"alice": ["demo_campus"]}, now_ms=lambda: NOW)


def run_block(name: str, env: dict[str, str]) -> str:
    if shutil.which("sqlite3") is None and "sqlite3" in blocks()[name]:
        message = "the sqlite3 command line tool is not installed (apt-get install sqlite3)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    venv_bin = str(Path(sys.executable).parent)
    full = {**os.environ, **env, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks()[name]],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{name}: {done.stderr}"
    return done.stdout


async def _make_things(api: httpx.AsyncClient, point: str) -> dict[str, Any]:
    config = {"site": "demo_campus", "points": [point], "view": "line"}
    chart = await api.post("/api/charts", json={"name": "AHU", "config": config}, headers=ALICE)
    assert chart.status_code == 201, chart.text
    chart_id = chart.json()["id"]
    plan = await api.post(
        "/api/files",
        files={"file": ("plan.png", png_bytes(16, 16))},
        params={"site": "demo_campus"},
        headers=ALICE,
    )
    report = await api.post(
        "/api/files",
        files={"file": ("report.pdf", PDF_BYTES)},
        params={"chart": chart_id},
        headers=ALICE,
    )
    assert plan.status_code == report.status_code == 201
    return await _observe(api, point, chart_id)


async def _observe(api: httpx.AsyncClient, point: str, chart_id: str) -> dict[str, Any]:
    chart = await api.get(f"/api/charts/{chart_id}", headers=ALICE)
    site_files = await api.get("/api/files", params={"site": "demo_campus"}, headers=ALICE)
    attached = await api.get("/api/files", params={"chart": chart_id}, headers=ALICE)
    files = site_files.json()["items"] + attached.json()["items"]
    series = await api.get(
        "/api/timeseries",
        params={"site": "demo_campus", "points": point, "start": "2025-10-01", "end": "2025-10-03"},
        headers=ALICE,
    )
    assert chart.status_code == series.status_code == 200, series.text
    return {
        "chart_id": chart_id,
        "chart": chart.json(),
        "files": files,
        "bytes": [(await api.get(f["url"], headers=ALICE)).content for f in files],
        "series": series.json()["series"],
        "cache": series.headers["x-cache-status"],
    }


async def _round_trip(conf: Settings, env: dict[str, str], kind: str, wipe: Any) -> None:
    sim = simulator()
    point = sim.sites[0].collecting[0].name
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        before = await _make_things(api, point)
        run_block(f"backup-{kind}", env)  # while tsgate runs
    wipe()
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        # nothing is left: the same token owns nothing
        assert (await api.get("/api/files", headers=ALICE)).json()["total"] == 0
    wipe()
    run_block(f"restore-{kind}", env)
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        after = await _observe(api, point, before["chart_id"])
    assert before["series"] and before["series"][0]["data"]
    assert {k: after[k] for k in ("chart", "files", "bytes", "series")} == {
        k: before[k] for k in ("chart", "files", "bytes", "series")
    }
    assert len(after["files"]) == 2
    assert after["cache"] == "MISS"  # the chunks were not in the backup: fetched again


async def test_backup_wipe_restore_embedded(tmp_path: Path) -> None:
    var = tmp_path / "var"
    db_file, objects = var / "tsgate.db", var / "objects"
    conf = Settings(database_url=f"sqlite:///{db_file}", objects_url=f"file://{objects}")
    env = {
        "DB_FILE": str(db_file),
        "OBJECTS": str(objects),
        "BACKUP": str(tmp_path / "backup" / "today"),
        "TSGATE_DATABASE_URL": conf.database_url,
        "TSGATE_OBJECTS_URL": conf.objects_url,
    }
    await _round_trip(conf, env, "embedded", lambda: shutil.rmtree(var, ignore_errors=True))
    assert not (tmp_path / "backup" / "today" / "objects" / "chunks").exists()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (pg_dump takes whole databases), dropped afterwards."""
    import psycopg

    base = service_url("postgres")
    name = f"tsgate_runbook_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
async def test_backup_wipe_restore_postgres(tmp_path: Path, postgres_database: str) -> None:
    import psycopg

    objects = tmp_path / "objects"
    conf = Settings(database_url=postgres_database, objects_url=f"file://{objects}")
    env = {
        "DATABASE_URL": postgres_database,
        "OBJECTS": str(objects),
        "BACKUP": str(tmp_path / "backup"),
        "TSGATE_DATABASE_URL": postgres_database,
        "TSGATE_OBJECTS_URL": conf.objects_url,
    }
    base = service_url("postgres")
    name = urlsplit(postgres_database).path.lstrip("/")

    def wipe() -> None:
        shutil.rmtree(objects, ignore_errors=True)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    await _round_trip(conf, env, "postgres", wipe)


def test_the_daily_checks_run_as_written(tmp_path: Path) -> None:
    conf = Settings(
        database_url=f"sqlite:///{tmp_path}/tsgate.db", objects_url=f"file://{tmp_path}/objects"
    )
    env = {"TSGATE_DATABASE_URL": conf.database_url, "TSGATE_OBJECTS_URL": conf.objects_url}
    with live_server(create_app(conf, upstream=sim_client(simulator()))) as url:
        out = run_block("daily-checks", {**env, "TSGATE": url})
    # curl prints each body without a newline: four JSON documents in a row, then the jobs
    bodies, at, decoder = [], 0, json.JSONDecoder()
    for _ in range(4):
        body, at = decoder.raw_decode(out, at)
        bodies.append(body)
    health, report, monitor, stats = bodies
    assert health["status"] == "healthy" and health["alerts"] == []
    assert set(report) >= {"day", "metrics", "alerts"}
    assert set(monitor["metrics"]) <= {"store_bytes", "database_bytes", "request_error_ratio"}
    assert "integrity" in stats and "warm" in stats


async def test_the_cache_commands_run_as_written(tmp_path: Path) -> None:
    conf = Settings(
        database_url=f"sqlite:///{tmp_path}/tsgate.db",
        objects_url=f"file://{tmp_path}/objects",
        admin_key="k",
    )
    sim = simulator()
    point = sim.sites[0].collecting[0].name
    query = {"site": "demo_campus", "points": point, "start": "2025-10-01", "end": "2025-10-03"}
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        first = await api.get("/api/timeseries", params=query, headers=ALICE)
        assert first.status_code == 200 and first.headers["x-cache-status"] == "MISS"
    env = {
        "TSGATE_DATABASE_URL": conf.database_url,
        "TSGATE_OBJECTS_URL": conf.objects_url,
        "TSGATE_UPSTREAM_TOKEN": "demo",  # the built-in simulator (sim://) takes any token
        "KEY": "k",
        "POINT": point,
    }
    with live_server(create_app(conf, upstream=sim_client(simulator()))) as url:
        out = run_block("cache-commands", {**env, "TSGATE": url})
    verified, rest = out.lstrip().split("\n", 1)
    cached = len(sim.truth(point, *parse_range("2025-10-01", "2025-10-03"))[0])
    assert f"{cached} cached and {cached} upstream samples, 0 differences" in verified
    invalidated, at = json.JSONDecoder().raw_decode(rest)
    assert invalidated["deletedChunks"] == 2  # the two days read above
    assert json.loads(rest[at:])["chunks"] == 0  # the cleanup pass's report: none left
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        again = await api.get("/api/timeseries", params=query, headers=ALICE)
        assert again.headers["x-cache-status"] == "MISS"  # invalidated: fetched again
        assert again.json()["series"] == first.json()["series"]
