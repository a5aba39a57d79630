"""``tsgate warm`` as a process: progress on stderr, a report on stdout, resumable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import simtruth
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import open_services

pytestmark = pytest.mark.slow


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSGATE_")}
    env.update(
        TSGATE_DATABASE_URL=f"sqlite:///{folder}/tsgate.db",
        TSGATE_OBJECTS_URL=f"file://{folder}/objects",
        TSGATE_UPSTREAM_URL="sim://?seed=1",
        TSGATE_LOG_LEVEL="warning",
        **extra,
    )
    return env


def warm(folder: Path, *args: str, token: str = "t") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsgate", "warm", *args],
        env=_env(folder, TSGATE_UPSTREAM_TOKEN=token) if token else _env(folder),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_warm_fetches_once_and_resumes(tmp_path: Path) -> None:
    first = warm(
        tmp_path,
        "--site",
        "elm_school",
        "--q",
        "ahu1",
        "--start",
        "2025-09-01",
        "--end",
        "2025-10-01",
    )
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["units"] == 1 and report["already_cached"] == 0
    assert report["fetched_samples"] > 0 and report["failed"] == []
    assert "warm elm_school" in first.stderr and "1/1" in first.stderr
    # a wider range: September is cached already and counted as such, August is fetched
    second = warm(
        tmp_path,
        "--site",
        "elm_school",
        "--q",
        "ahu1",
        "--start",
        "2025-08-01",
        "--end",
        "2025-10-01",
        "--concurrency",
        "2",
    )
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["units"] == 2 and again["already_cached"] == 1
    assert "2/2" in second.stderr and "1 cached" in second.stderr
    third = warm(
        tmp_path,
        "--site",
        "elm_school",
        "--q",
        "ahu1",
        "--start",
        "2025-08-01",
        "--end",
        "2025-10-01",
        "--no-progress",
    )
    done = json.loads(third.stdout)
    assert done["already_cached"] == 2 and done["upstream_requests"] == 0
    assert "warm elm_school" not in third.stderr

    # what was warmed is what upstream holds, and reading it costs no upstream call
    async def check() -> None:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/tsgate.db",
            objects_url=f"file://{tmp_path}/objects",
            inline_worker=False,
            maintenance_interval_s=0,
        )
        sim = create_simulator(seed=1)
        names = sorted(
            p.name for p in sim.site_by_name["elm_school"].collecting if p.device == "Ahu1"
        )
        start = parse_time("start", "2025-08-01")
        end = parse_time("end", "2025-10-01")
        async with open_services(settings) as services:
            found, stats = await services.reader.read("elm_school", names, start, end, token="t")
        assert stats.upstream_requests == 1  # only the access check of the token
        assert stats.fetched_ms == 0 and stats.cache_status == "HIT"
        for name in names[:2]:
            rows = await simtruth.samples(sim, name, start, end)
            assert found[name].t_ms.tolist() == [t for t, _ in rows]

    asyncio.run(check())


def test_warm_refuses_bad_requests(tmp_path: Path) -> None:
    no_token = warm(tmp_path, "--site", "elm_school", "--start", "2025-09-01", token="")
    assert no_token.returncode == 2 and "no token" in no_token.stderr
    no_match = warm(tmp_path, "--site", "elm_school", "--q", "zzz", "--start", "2025-09-01")
    assert no_match.returncode == 1 and "no collecting point" in no_match.stderr
    no_chart = warm(tmp_path, "--chart", "nope", "--start", "2025-09-01")
    assert no_chart.returncode == 1 and "no saved chart" in no_chart.stderr
    bad_time = warm(tmp_path, "--site", "elm_school", "--q", "ahu1", "--start", "soon")
    assert bad_time.returncode == 1 and "start" in bad_time.stderr
