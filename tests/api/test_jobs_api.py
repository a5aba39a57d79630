"""The jobs API over HTTP (ASGI): the 202 flow, results, errors, cancel and retry."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools

import httpx
import msgspec
import pyarrow.parquet as pq
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z
AUTH = {"Authorization": "Bearer t"}


def body(site: str = "elm_school", **changes: object) -> dict[str, object]:
    sim = create_simulator(seed=3)
    names = [p.name for p in sim.sites[2].collecting[:3]]
    return {
        "kind": "export",
        "site": site,
        "points": names,
        "start": "2025-10-01T00:00:00",
        "end": "2025-10-04T00:00:00",
        "format": "parquet",
    } | changes


async def wait_done(client: httpx.AsyncClient, url: str) -> list[dict[str, object]]:
    seen = []
    for _ in range(400):
        status = (await client.get(url, headers=AUTH)).json()
        seen.append(status)
        if status["status"] in {"completed", "dead", "cancelled"}:
            return seen
        await asyncio.sleep(0.01)
    raise AssertionError(f"job did not finish: {seen[-1]}")


async def test_submit_progress_complete_download(settings: Settings) -> None:
    sim = create_simulator(seed=3, now_ms=lambda: NOW)
    conf = dataclasses.replace(settings, job_poll_s=0.05)
    async with api_client(conf, sim, clock_ms=lambda: NOW) as client:
        posted = await client.post("/api/jobs", json=body(), headers=AUTH)
        assert posted.status_code == 202
        location = posted.headers["location"]
        assert location == f"/api/jobs/{posted.json()['jobId']}"
        seen = await wait_done(client, location)
        progress = [s["progress"] for s in seen]
        assert progress == sorted(progress) and seen[-1]["status"] == "completed"
        result = await client.get(f"{location}/result", headers=AUTH)
        assert result.status_code == 200
        assert "attachment" in result.headers["content-disposition"]
        table = pq.read_table(io.BytesIO(result.content))
        assert table.column_names == ["time", "point", "value"]
        assert table.num_rows == seen[-1]["samplesDone"] > 0
        again = await client.post("/api/jobs", json=body(), headers=AUTH)
        assert again.status_code == 200 and again.json()["jobId"] == posted.json()["jobId"]
        events = await client.get(f"{location}/events", headers=AUTH)
        assert events.text.startswith("event: end\n")
        listed = (await client.get("/api/jobs?status=completed", headers=AUTH)).json()
        assert [j["jobId"] for j in listed["items"]] == [posted.json()["jobId"]]
        # another caller cannot see it
        other = await client.get(location, headers={"Authorization": "Bearer other"})
        assert other.status_code == 404


async def test_query_results_carry_kind_and_mode_like_the_chart_api(settings: Settings) -> None:
    """A query job's result is the chart answer, each series' kind and mode included."""
    now = 1_790_000_000_000  # 2026-09-21
    sim = create_simulator(seed=3, now_ms=lambda: now)
    site = sim.site_by_name["rhine_lab"]
    kinds = ("ahu_mode", "compressor", "zone_temp", "zone_temp_cov")
    names = [next(p.name for p in site.collecting if p.kind == k) for k in kinds]
    query = {
        "site": "rhine_lab",
        "start": "2026-09-01T00:00:00",
        "end": "2026-09-08T00:00:00",
        "interval": "1d",
        "agg": "twavg",
        "tz": "site",
    }
    conf = dataclasses.replace(settings, job_poll_s=0.05)
    async with api_client(conf, sim, clock_ms=lambda: now) as client:
        job = {"kind": "query", "points": names} | {k: query[k] for k in query if k != "tz"}
        posted = await client.post("/api/jobs", json=job, headers=AUTH)
        assert posted.status_code == 202, posted.text
        seen = await wait_done(client, posted.headers["location"])
        assert seen[-1]["status"] == "completed", seen[-1]
        result = await client.get(f"{posted.headers['location']}/result", headers=AUTH)
        sync = await client.get(
            "/api/timeseries", params=query | {"points": ",".join(names), "tz": "UTC"}, headers=AUTH
        )
    assert sync.status_code == 200, sync.text
    described = [(s["name"], s["kind"], s["mode"]) for s in result.json()["series"]]
    assert described == [(s["name"], s["kind"], s["mode"]) for s in sync.json()["series"]]
    assert [k for _, k, _ in described] == ["multistate", "binary", "analog", "analog"]
    assert result.json()["series"] == sync.json()["series"]


async def test_query_results_carry_the_chart_apis_gaps(settings: Settings) -> None:
    """A query job lists each point's gaps by its own rule, as the chart API does: a
    change-of-value point's quiet hours are not gaps, a silence of 1.5 heartbeats is."""
    now = 1_790_000_000_000  # 2026-09-21
    sim = create_simulator(seed=3, now_ms=lambda: now)
    site = sim.site_by_name["rhine_lab"]
    kinds = ("ahu_mode", "occ_schedule", "zone_temp")
    names = [next(p.name for p in site.collecting if p.kind == k) for k in kinds]
    query = {"site": "rhine_lab", "start": "2026-09-14T00:00:00", "end": "2026-09-16T00:00:00"}
    conf = dataclasses.replace(settings, job_poll_s=0.05)
    async with api_client(conf, sim, clock_ms=lambda: now) as client:
        job = {"kind": "query", "points": names, "interval": "raw"} | query
        posted = await client.post("/api/jobs", json=job, headers=AUTH)
        assert posted.status_code == 202, posted.text
        seen = await wait_done(client, posted.headers["location"])
        assert seen[-1]["status"] == "completed", seen[-1]
        result = await client.get(f"{posted.headers['location']}/result", headers=AUTH)
        sync = await client.get(
            "/api/timeseries", params=query | {"points": ",".join(names)}, headers=AUTH
        )
    assert sync.status_code == 200, sync.text
    gaps = result.json()["metadata"]["gaps"]
    assert gaps == sync.json()["metadata"]["gaps"]
    for name in names[:2]:  # reporting on change: hourly heartbeats, silent in between
        assert all(b - a > 90 * 60_000 for a, b in gaps.get(name, []))
        times = [t for t, _ in result.json()["series"][names.index(name)]["data"]]
        quiet = sum(b - a > 15 * 60_000 for a, b in itertools.pairwise(times))
        assert quiet > 10  # what a 15-minute rule would have shaded


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"kind": "nope"}, "kind"),
        ({"points": "a"}, "points"),
        ({"points": []}, "points"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-09-01T00:00:00"}, "end"),
        ({"format": "xlsx"}, "format"),
        ({"notify_url": "http://127.0.0.1/hook"}, "notify_url"),
        ({"notify_url": "ftp://example.com/"}, "notify_url"),
        ({"max_points": "many"}, "max_points"),
        ({"agg": "timein:on"}, "agg"),
        ({"agg": "timein:"}, "agg"),
    ],
)
async def test_bad_input_is_a_400_naming_the_parameter(
    settings: Settings, changes: dict[str, object], param: str
) -> None:
    async with api_client(settings, create_simulator(seed=3)) as client:
        response = await client.post("/api/jobs", json=body(**changes), headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["param"] == param


async def test_unknown_job_is_404_and_cancel_then_retry(settings: Settings) -> None:
    conf = dataclasses.replace(settings, inline_worker=False)
    async with api_client(conf, create_simulator(seed=3)) as client:
        assert (await client.get("/api/jobs/abc", headers=AUTH)).status_code == 404
        job_id = (await client.post("/api/jobs", json=body(), headers=AUTH)).json()["jobId"]
        cancelled = await client.delete(f"/api/jobs/{job_id}", headers=AUTH)
        assert cancelled.json()["status"] == "cancelled"
        no_result = await client.get(f"/api/jobs/{job_id}/result", headers=AUTH)
        assert no_result.status_code == 404
        retried = await client.post(f"/api/jobs/{job_id}/retry", headers=AUTH)
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        raw = await client.post("/api/jobs", content=b"[1]", headers=AUTH)
        assert raw.status_code == 400 and msgspec.json.decode(raw.content)["param"] == "body"
