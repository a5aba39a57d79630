"""The ACE simulator speaks the upstream contract and is a pure function of (seed, time)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"}


def client(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim), base_url="http://sim/api", headers=AUTH
    )


async def page_through(
    c: httpx.AsyncClient, site: str, params: dict[str, str]
) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    query = dict(params)
    while True:
        r = await c.get(f"/sites/{site}/timeseries/paginated", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["point_samples"])
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return rows
        query["cursor"] = body["next_cursor"]


async def test_campus_is_large_and_realistically_named() -> None:
    sim = create_simulator(seed=1)
    async with client(sim) as c:
        sites = (await c.get("/sites")).json()
        assert sites["total"] == 5 and sites["pages"] == 1
        first = (
            await c.get("/sites/demo_campus/configured_points", params={"per_page": 1000})
        ).json()
    assert first["total"] > 2000
    assert first["pages"] == -(-first["total"] // 1000)
    names = [p["name"] for p in first["items"]]
    assert any(
        ".points.ZoneTemp" in n and n.startswith("ses/demo_campus/192.168.96.4/n4/") for n in names
    )
    bacnet = [p.name for p in sim.sites[0].points if "/analogValue/" in p.name]
    assert bacnet and bacnet[0].startswith("ses/demo_campus/8000:33-8033/analogValue/")
    assert {"collect_enabled", "kv_tags", "marker_tags", "site", "created"} <= first["items"][
        0
    ].keys()


async def test_same_seed_same_samples_and_overlaps_agree() -> None:
    params = {
        "start_time": "2025-10-01T00:00:00",
        "end_time": "2025-10-01T06:00:00",
        "page_size": "5000",
        "raw_data": "true",
    }
    async with client(create_simulator(seed=7)) as a, client(create_simulator(seed=7)) as b:
        rows_a = await page_through(a, "elm_school", params)
        rows_b = await page_through(b, "elm_school", params)
        later = await page_through(
            a,
            "elm_school",
            {**params, "start_time": "2025-10-01T03:00:00", "end_time": "2025-10-01T09:00:00"},
        )
    assert rows_a == rows_b and len(rows_a) > 1000
    overlap_a = [r for r in rows_a if r["time"] >= "2025-10-01T03:00:00"]
    overlap_b = [r for r in later if r["time"] < "2025-10-01T06:00:00"]
    assert overlap_a == overlap_b
    async with client(create_simulator(seed=8)) as c:
        other = await page_through(c, "elm_school", params)
    assert [r["value"] for r in other] != [r["value"] for r in rows_a]


async def test_rows_follow_the_upstream_shape() -> None:
    async with client(create_simulator()) as c:
        rows = await page_through(
            c, "elm_school", {**DAY, "page_size": "50000", "raw_data": "True"}
        )
    sample = rows[0]
    assert set(sample) == {"name", "value", "time"}
    assert isinstance(sample["value"], str)
    float(sample["value"])
    assert (
        len(sample["time"]) == 26 and sample["time"][19] == "." and not sample["time"].endswith("Z")
    )
    # sweeps share timestamps across points, every 5 minutes
    times = sorted({r["time"] for r in rows})
    assert 280 <= len(times) <= 288
    per_sweep = len(rows) / len(times)
    assert per_sweep > 50


async def test_paging_is_exact_and_raw_data_false_gives_bucket_starts() -> None:
    async with client(create_simulator()) as c:
        small = await page_through(
            c, "elm_school", {**DAY, "page_size": "1000", "raw_data": "true"}
        )
        big = await page_through(
            c, "elm_school", {**DAY, "page_size": "500000", "raw_data": "true"}
        )
        buckets = await page_through(
            c, "elm_school", {**DAY, "page_size": "50000", "raw_data": "false"}
        )
        default = await page_through(c, "elm_school", {**DAY, "page_size": "50000"})
    assert small == big
    assert len(buckets) == len(big) and buckets == default
    assert all(r["time"].endswith(("0:00", "5:00")) and len(r["time"]) == 19 for r in buckets)
    cursor = json.loads(
        base64.b64decode(
            (
                await client(create_simulator()).get(
                    "/sites/elm_school/timeseries/paginated", params={**DAY, "page_size": "3"}
                )
            ).json()["next_cursor"]
        )
    )
    assert set(cursor) == {"offset", "timestamp"}


async def test_errors_speak_like_upstream() -> None:
    sim = create_simulator(tokens={"good": ["elm_school"]})
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/api") as c:
        bad = await c.get("/sites", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json() == {"message": "JWT Signature Invalid"}
        assert (
            await c.get("/sites", headers={"Authorization": "Bearer Bearer good"})
        ).status_code == 401
        good = {"Authorization": "Bearer good"}
        assert [s["name"] for s in (await c.get("/sites", headers=good)).json()["items"]] == [
            "elm_school"
        ]
        assert (
            await c.get("/sites/demo_campus/configured_points", headers=good)
        ).status_code == 403
        r = await c.get(
            "/sites/elm_school/timeseries/paginated", params={**DAY, "page_size": "7"}, headers=good
        )
        assert r.status_code == 400 and "page_size" in r.json()["message"]
        future = {"start_time": "2099-01-01T00:00:00", "end_time": "2099-01-02T00:00:00"}
        r = await c.get("/sites/elm_school/timeseries/paginated", params=future, headers=good)
        assert r.status_code == 404 and r.json() == {"message": "No data for time period"}


async def test_per_point_reads_with_encoded_names() -> None:
    sim = create_simulator()
    name = next(p.name for p in sim.sites[2].collecting if p.kind == "zone_temp")
    from urllib.parse import quote

    async with client(sim) as c:
        r = await c.get(f"/points/{quote(name, safe='')}/timeseries", params=DAY)
        assert r.status_code == 200
        rows = r.json()["point_samples"]
        assert rows and {row["name"] for row in rows} == {name}
        both = await c.post("/points/get_timeseries", params=DAY, json={"points": [name]})
        assert both.json()["point_samples"] == rows
        site_rows = await page_through(
            c, "elm_school", {**DAY, "page_size": "50000", "raw_data": "true"}
        )
    assert [row for row in site_rows if row["name"] == name] == rows
    temps = [float(row["value"]) for row in rows]
    assert 55 < min(temps) < max(temps) < 85  # a zone temperature, with a day/night swing


async def test_fault_switches() -> None:
    sim = create_simulator()
    async with client(sim) as c:
        sim.faults.fail_next = {"500": 1, "429": 1, "truncate": 1}
        params = {**DAY, "page_size": "100"}
        url = "/sites/elm_school/timeseries/paginated"
        r429 = await c.get(url, params=params)
        assert r429.status_code == 429 and r429.headers["retry-after"] == "1"
        assert (await c.get(url, params=params)).status_code == 500
        truncated = await c.get(url, params=params)
        assert truncated.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            truncated.json()
        sim.faults.fail_next = {"duplicate": 1}
        dup = (await c.get(url, params=params)).json()["point_samples"]
        assert len(dup) == 110
        assert len((await c.get(url, params=params)).json()["point_samples"]) == 100
    assert sim.stats.by_route["paginated"] == 5


def test_the_large_site_is_added_only_when_asked_and_changes_no_other_site() -> None:
    plain, large = create_simulator(seed=3), create_simulator(seed=3, large_site=True)
    assert [s.name for s in large.sites] == [*(s.name for s in plain.sites), "large_campus"]
    for before, after in zip(plain.sites, large.sites, strict=False):
        assert before == after  # same points, ids, keys: the same samples
    big = large.site_by_name["large_campus"]
    assert 3400 <= len(big.collecting) <= 3700
    assert len({p.name for p in big.points}) == len(big.points)
    ids = [p.id for s in large.sites for p in s.points]
    assert len(set(ids)) == len(ids)


async def test_a_transfer_cost_per_sample_slows_timeseries_answers_and_changes_nothing() -> None:
    import time

    plain, costly = create_simulator(seed=1), create_simulator(seed=1)
    costly.faults.sample_cost_us = 20.0  # 10,000 rows: 0.2 s
    params = {**DAY, "page_size": "10000", "raw_data": "true"}
    url = "/sites/elm_school/timeseries/paginated"
    async with client(plain) as a, client(costly) as b:
        fast = await a.get(url, params=params)
        started = time.monotonic()
        slow = await b.get(url, params=params)
        slow_s = time.monotonic() - started
        set_cost = await b.post("http://sim/_sim/faults", json={"sample_cost_us": 0})
        again = await b.get(url, params=params)
    assert slow.content == fast.content == again.content  # the same contract, only later
    assert len(slow.json()["point_samples"]) == 10000
    assert slow_s >= 0.2
    assert set_cost.status_code == 200 and costly.faults.sample_cost_us == 0


async def test_stats_count_the_requests_for_samples_apart_from_the_others() -> None:
    sim = create_simulator(seed=1)
    params = {**DAY, "page_size": "1000", "raw_data": "true"}
    async with client(sim) as c:
        assert (await c.get("/sites/elm_school")).status_code == 200
        assert (await c.get("/sites/elm_school/timeseries/paginated", params=params)).is_success
        assert (await c.get("/sites/elm_school/timeseries", params=DAY)).is_success
        stats = (await c.get("http://sim/_sim/stats")).json()
        reset = (await c.delete("http://sim/_sim/stats")).json()
    # the control routes (/_sim/...) are not counted
    assert (stats["requests"], stats["data_requests"]) == (3, 2)
    assert stats["samples"] > 1000
    assert (reset["requests"], reset["data_requests"], reset["samples"]) == (0, 0, 0)
