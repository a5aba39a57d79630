"""Aligned frames: one time index, a value and a coverage column per point, three formats."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests import simtruth
from tests.asgi import api_client
from tests.clock import NOW, OCT1, Clock
from tsgate.core import frame
from tsgate.settings import Settings
from tsgate.upstream import campus
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
DAY_MS = 86_400_000
RANGE = {"start": "2025-10-02T00:00:00", "end": "2025-10-04T00:00:00"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=5, now_ms=lambda: NOW)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim, clock_ms=Clock(NOW)) as client:
        yield client


def ahu_points(sim: Simulator) -> list[str]:
    return [p.name for p in sim.site_by_name["elm_school"].collecting if p.device == "Ahu1"][:3]


def read(fmt: str, body: bytes) -> pa.Table:
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_all()
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body))
    return pacsv.read_csv(io.BytesIO(body))


@pytest.mark.parametrize(
    ("fmt", "how"),
    [
        ("arrow", {"format": "arrow"}),
        ("parquet", {"format": "parquet"}),
        ("csv", {}),
        ("arrow", {"accept": "application/vnd.apache.arrow.stream"}),
        ("parquet", {"accept": "application/vnd.apache.parquet"}),
    ],
)
async def test_frame_columns_match_the_simulator(
    api: httpx.AsyncClient, sim: Simulator, fmt: str, how: dict[str, str]
) -> None:
    names = ahu_points(sim)
    params = {"site": "elm_school", "points": ",".join(names), **RANGE, "interval": "15min"}
    headers = dict(AUTH)
    if "format" in how:
        params["format"] = how["format"]
    if "accept" in how:
        headers["Accept"] = how["accept"]
    r = await api.get("/api/frame", params=params, headers=headers)
    assert r.status_code == 200, r.text
    data = read(fmt, r.content)
    assert data.column_names == ["time"] + [c for n in names for c in (n, f"coverage:{n}")]
    times = data.column("time").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    width = 15 * 60_000
    start = OCT1 + DAY_MS
    assert times.tolist() == list(range(start, start + 2 * DAY_MS, width))
    for name in names:
        rows = await simtruth.samples(sim, name, start, start + 2 * DAY_MS)
        values = data.column(name).to_numpy(zero_copy_only=False)
        coverage = data.column(f"coverage:{name}").to_numpy(zero_copy_only=False)
        for i, t in enumerate(times.tolist()):
            inside = [v for ts, v in rows if t <= ts < t + width]
            if inside:
                assert values[i] == pytest.approx(sum(inside) / len(inside))
            else:
                assert np.isnan(values[i])
            assert coverage[i] == pytest.approx(min(1.0, len(inside) / 3))


async def test_fill_and_coverage_flag_the_filled_cells(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = ahu_points(sim)[:1]
    # a window around the first sweep the point missed (the simulator's own model says)
    site = sim.site_by_name["elm_school"]
    sweeps = np.arange(OCT1 // 300_000, (OCT1 + 40 * DAY_MS) // 300_000, dtype=np.int64)
    missed = int(sweeps[~campus.present(site, site.by_name[names[0]], sweeps)][0]) * 300_000
    start = missed - 3 * 3_600_000
    base = {
        "site": "elm_school",
        "points": names[0],
        "format": "arrow",
        "start": format_time(start),
        "end": format_time(start + 6 * 3_600_000),
        "interval": "5min",
    }
    frames = {}
    for how in ("none", "previous", "linear"):
        r = await api.get("/api/frame", params={**base, "fill": how}, headers=AUTH)
        assert r.status_code == 200, r.text
        frames[how] = read("arrow", r.content)
    raw = frames["none"].column(names[0]).to_numpy(zero_copy_only=False)
    coverage = frames["none"].column(f"coverage:{names[0]}").to_numpy(zero_copy_only=False)
    assert np.isnan(raw).any() and not np.isnan(raw).all()
    assert np.array_equal(np.isnan(raw), coverage == 0)  # a gap is a cell with no sample
    for how in ("previous", "linear"):
        filled = frames[how].column(names[0]).to_numpy(zero_copy_only=False)
        assert np.allclose(filled, frame.fill(raw, how), equal_nan=True)
        assert np.array_equal(frames[how].column(f"coverage:{names[0]}").to_numpy(), coverage)


async def test_points_by_search(api: httpx.AsyncClient, sim: Simulator) -> None:
    r = await api.get(
        "/api/frame",
        params={"site": "elm_school", "q": "ahu1", "tags": "temp", **RANGE, "interval": "1h"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    columns = read("csv", r.content).column_names
    expected = sorted(
        p.name
        for p in sim.site_by_name["elm_school"].collecting
        if p.device == "Ahu1" and p.kind in ("supply_temp", "return_temp")
    )
    assert sorted(c for c in columns if c != "time" and not c.startswith("coverage:")) == expected


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"fill": "spline"}, 400, "fill"),
        ({"interval": "raw"}, 400, "interval"),
        ({"interval": "7d"}, 400, "interval"),
        ({"format": "xlsx"}, 400, "format"),
        ({"agg": "median"}, 400, "agg"),
        ({"points": "", "q": "no-such-point"}, 400, "q"),
        ({"points": ""}, 400, "points"),
        ({"site": ""}, 400, "site"),
        ({"start": "yesterday"}, 400, "start"),
        ({"end": "2025-10-01T00:00:00"}, 400, "end"),
    ],
)
async def test_bad_frames_name_the_parameter(
    api: httpx.AsyncClient, sim: Simulator, params: dict[str, str], status: int, param: str
) -> None:
    query = {"site": "elm_school", "points": ahu_points(sim)[0], **RANGE, **params}
    r = await api.get("/api/frame", params=query, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["param"] == param


async def test_limits_and_cold_frames(sim: Simulator, settings: Settings) -> None:
    names = ahu_points(sim)
    query = {"site": "elm_school", "points": ",".join(names), **RANGE}
    small = dataclasses.replace(settings, max_inline_samples=100, inline_fetch_samples=10)
    async with api_client(small, sim, clock_ms=Clock(NOW)) as api:
        r = await api.get("/api/frame", params=query, headers=AUTH)
        assert r.status_code == 413 and r.json()["limit"] == "max_inline_samples"
        r = await api.get("/api/frame", params={**query, "interval": "1d"}, headers=AUTH)
        assert r.status_code == 202 and r.headers["Location"].startswith("/api/jobs/")
        r = await api.get("/api/frame", params={**query, "interval": "1d"})
        assert r.status_code == 401


async def test_a_search_matching_too_many_points_is_refused(
    sim: Simulator, settings: Settings
) -> None:
    few = dataclasses.replace(settings, max_points_per_request=3)
    async with api_client(few, sim, clock_ms=Clock(NOW)) as api:
        r = await api.get(
            "/api/frame",
            params={"site": "elm_school", "q": "", "tags": "vav", **RANGE},
            headers=AUTH,
        )
        assert r.status_code == 413 and r.json()["limit"] == "max_points_per_request"
