"""The operators' commands (``tsgate migrate``, ``tsgate jobs …``) on a real SQLite store.

Each command runs through ``tsgate.cli.main`` with ``TSGATE_*`` variables, as from a
shell; what it did is read back from the job store directly.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.asgi import sim_client
from tests.clock import OCT1
from tsgate.cli import main
from tsgate.core.model import MS_PER_DAY
from tsgate.jobs.model import Job, JobState, normalise
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_job_admin, open_services


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    conf = {
        "TSGATE_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
        "TSGATE_SECRET": "cli-secret",
        "TSGATE_INLINE_WORKER": "false",
        "TSGATE_MAINTENANCE_INTERVAL_S": "0",
        "TSGATE_LOG_FORMAT": "text",
    }
    for name, value in conf.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def _submit(settings: Settings) -> str:
    async def submit() -> str:
        sim = create_simulator(seed=1)
        async with open_services(settings, upstream=sim_client(sim)) as services:
            names = [p.name for p in sim.sites[0].collecting[:2]]
            request = normalise(
                kind="export",
                site=sim.sites[0].name,
                points=names,
                start_ms=OCT1,
                end_ms=OCT1 + MS_PER_DAY,
                format="csv",
            )
            job, _ = await services.jobs.submit(request, "operator-test")
            return job.id

    return asyncio.run(submit())


def _stored(settings: Settings, job_id: str) -> Job | None:
    async def get() -> Job | None:
        async with open_job_admin(settings) as admin:
            return await admin.store.get(job_id)

    return asyncio.run(get())


def test_migrate_then_list_show_cancel_retry(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.startswith("database at head: sqlite:///")

    job_id = _submit(env)
    assert main(["jobs", "list"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{job_id}  queued") and "export/csv" in line and "2 points" in line

    assert main(["jobs", "show", job_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["jobId"] == job_id and shown["status"] == "queued"

    assert main(["jobs", "cancel", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    stored = _stored(env, job_id)
    assert stored is not None and stored.state is JobState.CANCELLED

    assert main(["jobs", "retry", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "queued"
    stored = _stored(env, job_id)
    assert stored is not None and stored.state is JobState.QUEUED

    assert main(["jobs", "list", "--status", "dead"]) == 0
    assert capsys.readouterr().out == ""


def test_an_unknown_job_is_said_and_exits_1(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "show", "no-such-job"]) == 1
    assert capsys.readouterr().out.strip() == "no job no-such-job"


def test_cleanup_prints_the_maintenance_report(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _submit(env)
    assert main(["cleanup"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["jobs_removed"] == 0 and report["job_results"] == 0
    assert report["database_bytes"] > 0 and report["alerts"] == []


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "many"])
def test_a_bad_list_limit_is_refused_by_name(
    env: Settings, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "list", "--limit", limit])
    assert exited.value.code == 2
    assert f"--limit: {limit!r} is not a whole number from 1 to 10000" in capsys.readouterr().err


def test_python_dash_m_tsgate_is_the_same_command_line() -> None:
    import subprocess
    import sys

    from tsgate import __version__

    run = subprocess.run(
        [sys.executable, "-m", "tsgate", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.strip() == __version__


@pytest.mark.parametrize("workers", ["0", "257", "two"])
def test_a_bad_worker_count_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", workers])
    assert exited.value.code == 2
    assert f"--workers: {workers!r} is not a whole number from 1 to 256" in capsys.readouterr().err


def test_serve_defaults_to_one_process_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from tsgate.cli.serve import default_workers

    monkeypatch.delenv("TSGATE_WORKERS", raising=False)
    assert default_workers() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("TSGATE_WORKERS", "3")
    assert default_workers() == 3
