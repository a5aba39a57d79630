"""``tsgate.client`` against a running server: DataFrames checked against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from tests import simtruth
from tests.asgi import live_server, sim_client
from tests.clock import NOW, OCT1, Clock
from tsgate.app import create_app
from tsgate.client import AsyncClient, BadRequest, Client, NotFound, TooLarge, Unauthorized
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

DAY_MS = 86_400_000
START, END = "2025-10-02T00:00:00", "2025-10-04T00:00:00"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return create_simulator(
        seed=5, tokens={"t": ["elm_school", "office_tower"]}, now_ms=lambda: NOW
    )


def _settings(folder: Path, **changes: object) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{folder}/tsgate.db", objects_url=f"file://{folder}/objects"
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("client")
    app = create_app(_settings(folder), upstream=sim_client(sim), clock_ms=Clock(NOW))
    with live_server(app) as url:
        yield url


@pytest.fixture
def ts(server: str) -> Iterator[Client]:
    with Client(server, token="t", poll_s=0.05) as client:
        yield client


def ahu(sim: Simulator) -> list[str]:
    return [p.name for p in sim.site_by_name["elm_school"].collecting if p.device == "Ahu1"][:3]


def truth(sim: Simulator, name: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
    return asyncio.run(simtruth.samples(sim, name, start_ms, end_ms))


def test_sites_and_points(ts: Client, sim: Simulator) -> None:
    assert sorted(s["name"] for s in ts.sites()) == ["elm_school", "office_tower"]
    found = ts.points("elm_school", q="ahu1", tags=["temp"])
    assert list(found.columns) == ["name", "unit", "tags", "collect_enabled"]
    expected = sorted(
        p.name
        for p in sim.site_by_name["elm_school"].points
        if p.device == "Ahu1" and p.kind in ("supply_temp", "return_temp")
    )
    assert sorted(found["name"]) == expected and set(found["unit"]) == {"°F"}


def test_raw_series_is_every_sample(ts: Client, sim: Simulator) -> None:
    names = ahu(sim)
    df = ts.series("elm_school", names, START, END)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert list(df.columns) == names
    start = OCT1 + DAY_MS
    for name in names:
        rows = truth(sim, name, start, start + 2 * DAY_MS)
        column = df[name].dropna()
        assert [int(t.value // 1_000_000) for t in column.index] == [t for t, _ in rows]
        assert np.allclose(column.to_numpy(), [v for _, v in rows])


def test_hourly_series_and_time_zone(ts: Client, sim: Simulator) -> None:
    names = ahu(sim)[:2]
    df = ts.series("elm_school", names, START, END, interval="1h", agg="max", tz="America/New_York")
    assert str(df.index.tz) == "America/New_York" and len(df) == 48
    start = OCT1 + DAY_MS
    rows = truth(sim, names[0], start, start + 2 * DAY_MS)
    for i, value in enumerate(df[names[0]].to_numpy()):
        hour = start + i * 3_600_000
        inside = [v for t, v in rows if hour <= t < hour + 3_600_000]
        assert value == pytest.approx(max(inside), rel=1e-6)  # float32 on the wire


def test_frame(ts: Client, sim: Simulator) -> None:
    df = ts.frame("elm_school", q="ahu1", tags=["temp"], start=START, end=END, interval="1h")
    assert len(df) == 48 and df.index.name == "time"
    values = [c for c in df.columns if not c.startswith("coverage:")]
    assert len(values) == 2 and all(f"coverage:{c}" in df.columns for c in values)
    assert ((df.filter(like="coverage:") >= 0) & (df.filter(like="coverage:") <= 1)).all().all()


def test_export_with_progress(ts: Client, sim: Simulator, tmp_path: Path) -> None:
    names = ahu(sim)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    path = ts.export(
        "elm_school",
        names,
        START,
        END,
        format="csv",
        path=tmp_path / "x.csv",
        progress=True,
        console=console,
    )
    exported = pd.read_csv(path)
    start = OCT1 + DAY_MS
    assert len(exported) == sum(len(truth(sim, n, start, start + 2 * DAY_MS)) for n in names)
    shown = out.getvalue()
    assert "100%" in shown and "completed" in shown


def test_problems_become_exceptions(ts: Client, server: str, sim: Simulator) -> None:
    with pytest.raises(BadRequest) as bad:
        ts.series("elm_school", ahu(sim), START, END, interval="2h")
    assert bad.value.param == "interval" and bad.value.status == 400
    with pytest.raises(NotFound):
        ts.job("0" * 32)
    with Client(server, token="nope") as stranger, pytest.raises(Unauthorized):
        stranger.series("elm_school", ahu(sim), START, END)
    with pytest.raises(TooLarge) as large:
        ts.series("elm_school", ahu(sim), "2020-01-01", "2025-10-01")
    assert large.value.limit == "max_range_days"


def test_a_202_is_followed_to_the_result(sim: Simulator, tmp_path: Path) -> None:
    app = create_app(
        _settings(tmp_path, inline_fetch_samples=10),
        upstream=sim_client(sim),
        clock_ms=Clock(NOW),
    )
    names = ahu(sim)
    with live_server(app) as url, Client(url, token="t", poll_s=0.05) as ts:
        first = ts.series("elm_school", names, START, END, interval="1h")
        # the server answered 202: the client followed the job it named to its result
        jobs = httpx.get(f"{url}/api/jobs", headers={"Authorization": "Bearer t"}).json()["items"]
        assert [(j["kind"], j["status"]) for j in jobs] == [("query", "completed")]
        again = ts.series("elm_school", names, START, END, interval="1h")
        pd.testing.assert_frame_equal(first, again, check_dtype=False, rtol=1e-6)
        frame = ts.frame("elm_school", names, start="2025-10-10", end="2025-10-11", interval="1h")
        assert len(frame) == 24 and frame[names[0]].notna().all()


def test_async_client(server: str, sim: Simulator) -> None:
    async def main() -> tuple[pd.DataFrame, pd.DataFrame]:
        async with AsyncClient(server, token="t", poll_s=0.05) as ts:
            series = await ts.series("elm_school", ahu(sim), START, END, interval="1d")
            frame = await ts.frame("elm_school", ahu(sim), start=START, end=END, interval="6h")
            return series, frame

    series, frame = asyncio.run(main())
    assert len(series) == 2 and list(series.columns) == ahu(sim)
    assert len(frame) == 8 and frame.shape[1] == 6
