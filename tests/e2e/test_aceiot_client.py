"""The official ACE client library, unchanged, against tsgate served over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from aceiot_models.api import APIClient

from tests.asgi import free_port, live_server, sim_client
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

START, END = "2025-10-01T00:00:00", "2025-10-01T06:00:00"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture(scope="module")
def base_url(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("e2e")
    conf = Settings(database_url=f"sqlite:///{tmp}/t.db", objects_url=f"file://{tmp}/objects")
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url + "/api"


def test_official_client_works_unchanged(base_url: str, sim: Simulator) -> None:
    client = APIClient(base_url=base_url, api_key="any-token", timeout=30)
    sites = client.get_sites()
    assert [s["name"] for s in sites["items"]] == [s.name for s in sim.sites]

    # every configured point, through all pages, exactly once
    names: list[str] = []
    page = 1
    while True:
        got = client.get_site_configured_points("demo_campus", page=page, per_page=500)
        names.extend(p["name"] for p in got["items"])
        if page >= got["pages"]:
            break
        page += 1
    assert len(names) == len(set(names)) == len(sim.sites[0].points)

    whole = client.get_site_timeseries_paginated(
        "elm_school", START, END, page_size=1000, raw_data=True
    )
    samples = whole["point_samples"]
    assert len(samples) > 6 * 12 * 90
    assert {s["name"] for s in samples} == {p.name for p in sim.sites[2].collecting}

    name = next(p.name for p in sim.sites[2].collecting if "/analogValue/" in p.name)
    one = client.get_point_timeseries(name, START, END)["point_samples"]
    assert one and {s["name"] for s in one} == {name}
    assert [s["value"] for s in one] == [s["value"] for s in samples if s["name"] == name]
    assert client.get_points_timeseries([name], START, END)["point_samples"] == one


def test_demo_command_serves_without_a_token(tmp_path: object) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TSGATE_DATABASE_URL": "sqlite:///" + str(tmp_path) + "/t.db",
        "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsgate", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health.json()["status"] == "healthy"
        sites = httpx.get(f"http://127.0.0.1:{port}/api/sites", timeout=5)
        assert sites.status_code == 200 and sites.json()["total"] == 5
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out.decode()
