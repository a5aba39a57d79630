"""``tsgate verify``: the cache compared with upstream per point-day, and repaired."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tests.asgi import api_client, sim_client
from tests.clock import NOW, Clock
from tests.differential.harness import truth_buckets
from tsgate.__main__ import main
from tsgate.cli.verify import run_verify
from tsgate.core.codec import decode_series, encode_series
from tsgate.core.model import Series
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time, parse_time
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
SITE = "demo_campus"
START = parse_time("t", "2025-10-30T00:00:00")
END = NOW  # the open day is verified as far as it was fetched
QUARTER = 15 * 60_000


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return create_simulator(seed=1, now_ms=clock)


def names(sim: Simulator) -> list[str]:
    return [p.name for p in sim.site_by_name[SITE].collecting[:3]]


async def cache_range(settings: Settings, sim: Simulator, clock: Clock) -> None:
    async with api_client(settings, sim, clock_ms=clock) as api:
        r = await api.get(
            "/api/timeseries",
            params={"site": SITE, "points": ",".join(names(sim)), "start": format_time(START),
                    "end": format_time(END)},
            headers={"Authorization": "Bearer t"},
        )  # fmt: skip
        assert r.status_code == 200 and int(r.headers["X-Data-Samples"]) > 3 * 15 * 270


async def verify(
    settings: Settings, sim: Simulator, clock: Clock, *, fix: bool = False, points: bool = False
) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_verify(
        settings,
        SITE,
        names(sim) if points else [],
        START,
        END,
        token="t",
        fix=fix,
        console=Console(file=out, width=200),
        upstream=sim_client(sim),
        clock_ms=clock,
    )
    return code, out.getvalue()


async def test_a_freshly_cached_range_verifies_clean(
    settings: Settings, sim: Simulator, clock: Clock
) -> None:
    await cache_range(settings, sim, clock)
    code, text = await verify(settings, sim, clock)
    assert code == 0, text
    assert "3 points" in text and "0 differences" in text
    days = int(text.split(" point-days")[0].rsplit(" ", 1)[-1])
    assert days == 3 * 17  # Oct 30 → Nov 15 (the open day up to now)
    cached = int(text.split(" cached")[0].rsplit(" ", 1)[-1].replace(",", ""))
    upstream = int(text.split(" upstream samples")[0].rsplit(" ", 1)[-1].replace(",", ""))
    # every settled day is compared whole; the open day as far as the cache trusts it
    today = NOW - NOW % 86_400_000
    settled = sum(sim.truth(n, START, today)[0].size for n in names(sim))
    assert cached == upstream
    assert settled < cached <= sum(sim.truth(n, START, END)[0].size for n in names(sim))


async def _damage(settings: Settings, sim: Simulator, clock: Clock) -> tuple[str, str]:
    """Rewrite one chunk with wrong samples and delete another's object."""
    async with open_services(settings, upstream=sim_client(sim), clock_ms=clock) as services:
        store = services.reader.store
        rows = [r for r in await store.rows(SITE, names(sim), START, END) if r.object_key]
        wrong, lost = rows[0], rows[-1]
        assert wrong.point != lost.point
        good = decode_series(wrong.point, await services.objects.get(wrong.object_key) or b"")
        bad = Series(wrong.point, good.t_ms[5:], good.v[5:] + np.where(good.v[5:] > 60, 1.0, 0.0))
        await services.objects.put(wrong.object_key, encode_series(bad))
        await services.objects.delete(lost.object_key)
        store.forget(SITE)
    return wrong.point, lost.point


async def test_verify_finds_a_damaged_chunk_and_repair_fixes_it(
    settings: Settings, sim: Simulator, clock: Clock
) -> None:
    await cache_range(settings, sim, clock)
    # the 15-minute level of October and November is built before the damage
    async with open_services(settings, upstream=sim_client(sim), clock_ms=clock) as services:
        await services.reader.read_rollups(SITE, names(sim), "15m", START, END, token="t")
        built = await services.database.rollups.get(SITE, names(sim), "15m", START, END)
        assert len(built) == 2 * 3
    wrong, lost = await _damage(settings, sim, clock)
    code, text = await verify(settings, sim, clock, points=True)
    assert code == 1, text
    assert wrong in text and lost in text and "unreadable" in text and "hash differs" in text
    assert text.rstrip().endswith("2 differences")  # just the two damaged point-days
    code, text = await verify(settings, sim, clock, fix=True, points=True)
    assert code == 0, text
    assert "repaired" in text and text.rstrip().endswith("0 differences")
    code, text = await verify(settings, sim, clock)
    assert code == 0 and "0 differences" in text, text
    # and what is served is upstream's data again
    async with api_client(settings, sim, clock_ms=clock) as api:
        for name in (wrong, lost):
            r = await api.get(
                "/api/timeseries",
                params={"site": SITE, "points": name, "start": format_time(START),
                        "end": format_time(END), "layout": "columnar"},
                headers={"Authorization": "Bearer t"},
            )  # fmt: skip
            t_us, v = sim.truth(name, START, END)
            got = r.json()["series"][0]
            assert got["t"] == (t_us // 1000).tolist() and got["v"] == v.tolist()
    # and so are the 15-minute buckets of the repaired months (built again from them)
    async with open_services(settings, upstream=sim_client(sim), clock_ms=clock) as services:
        quarters, _ = await services.reader.read_rollups(
            SITE, names(sim), "15m", START, END, token="t"
        )
        for name in names(sim):
            t_us, v = sim.truth(name, START, END)
            t_ms = t_us // 1000
            want_t, want_n = truth_buckets((t_ms, v), QUARTER, "count", START)
            assert quarters[name].start_ms.tolist() == want_t.tolist()
            assert quarters[name].count.tolist() == want_n.astype(np.int64).tolist()
            want_max = truth_buckets((t_ms, v), QUARTER, "max", START)[1]
            np.testing.assert_array_equal(quarters[name].max, want_max)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "soon", "--end", "2025-10-02"], "--start"),
        (["--start", "2025-10-02", "--end", "2025-10-01"], "--end"),
    ],
)
def test_bad_arguments_exit_2_naming_them(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("TSGATE_DATABASE_URL", f"sqlite:///{tmp_path}/tsgate.db")
    monkeypatch.setenv("TSGATE_OBJECTS_URL", f"file://{tmp_path}/objects")
    assert main(["verify", "--site", SITE, *args]) == 2
    assert message in capsys.readouterr().out


def test_the_command_runs_on_the_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSGATE_DATABASE_URL", f"sqlite:///{tmp_path}/tsgate.db")
    monkeypatch.setenv("TSGATE_OBJECTS_URL", f"file://{tmp_path}/objects")
    code = main(["verify", "--site", SITE, "--start", "2025-10-01", "--end", "2025-10-02"])
    assert code == 0
    assert "0 points, 0 point-days" in capsys.readouterr().out  # nothing cached yet
