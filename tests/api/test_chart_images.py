"""``GET /api/charts/{id}.png|.svg``: a saved chart drawn server-side, looked at.

The PNG is opened and its pixels read (right size, not blank, axes drawn); what is drawn
is the saved chart's query, whose samples are counted against the simulator's truth;
images are cached under the data generation; hostile callers and inputs get problems.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.asgi import api_client
from tests.clock import NOW, Clock
from tsgate.api import chartimages, plotting
from tsgate.api.chartimages import chart_query
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time

pytestmark = pytest.mark.anyio
ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}
SITE = "demo_campus"
DAY_MS = 86_400_000
START, END = NOW - 3 * DAY_MS, NOW - 1 * DAY_MS


def _points(sim: Simulator) -> tuple[str, str]:
    """An analog point with a unit, and an on/off (COV) one, of the site."""
    site = sim.site_by_name[SITE]
    binary = next(p for p in site.collecting if p.kind.endswith("status"))
    analog = next(p for p in site.collecting if p.unit and not p.kind.endswith("status"))
    return analog.name, binary.name


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    clock: Clock
    analog: str
    binary: str

    async def save(self, **config: Any) -> str:
        body = {
            "site": SITE,
            "points": [self.analog, self.binary],
            "units": {self.analog: "°F"},
            "view": "line",
            "range": {"preset": "custom", "start": format_time(START), "end": format_time(END)},
            **config,
        }
        r = await self.api.post("/api/charts", json={"name": "AHU", "config": body}, headers=ALICE)
        assert r.status_code == 201, r.text
        chart_id: str = r.json()["id"]
        assert r.json()["image"] == f"/api/charts/{chart_id}.png"
        return chart_id


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, tokens={"alice": [SITE], "bob": ["other"]}, now_ms=clock)
    settings = dataclasses.replace(settings, admin_key="k")
    async with api_client(settings, sim, clock_ms=clock) as api:
        yield Env(api, sim, clock, *_points(sim))


def _dark(rgb: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(rgb.sum(axis=-1) < 200)


async def test_a_saved_chart_as_png_has_its_size_data_and_axes(env: Env, tmp_path: Path) -> None:
    chart_id = await env.save()
    r = await env.api.get(f"/api/charts/{chart_id}.png?width=900&height=500", headers=ALICE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    (tmp_path / "chart.png").write_bytes(r.content)
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "PNG" and image.size == (900, 500)
    rgb = np.asarray(image.convert("RGB")).astype(np.int64)
    # not blank: the series' colours cover many pixels of the plot
    first = np.array([int(plotting.PALETTE[0][i : i + 2], 16) for i in (1, 3, 5)])
    assert int((np.abs(rgb - first).sum(axis=-1) < 60).sum()) > 500
    dark = _dark(rgb)
    # the axes: a dark vertical spine over most of the height in the left fifth, and a
    # dark horizontal one over most of the width in the lower half
    assert dark[:, : 900 // 5].sum(axis=0).max() > 0.5 * 500 * 0.6
    assert dark[250:, :].sum(axis=1).max() > 0.7 * 900
    # every sample of the range is behind the picture: the simulator's own count
    truth = sum(len(env.sim.truth(p, START, END)[0]) for p in (env.analog, env.binary))
    assert int(r.headers["x-data-samples"]) == truth > 0


async def test_the_svg_names_the_units_and_draws_on_off_points_as_steps(env: Env) -> None:
    chart_id = await env.save()
    r = await env.api.get(f"/api/charts/{chart_id}.svg", headers=ALICE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    text = r.text
    # 1200 x 600 px (the default size) at 100 px per inch, in points (72 per inch)
    assert re.search(r'<svg[^>]* width="864pt" height="432pt"', text)
    assert "°F" in text and "state" in text and "time (UTC)" in text
    # the same figure, looked at: the on/off point is a step line on the state axis
    config = {"site": SITE, "points": [env.analog, env.binary], "range": {"preset": "24h"}}
    q = chart_query(config, NOW, 1200)
    assert q.max_points == 4 * int(1200 * 0.85) and q.end_ms == NOW
    t = np.array([0, 1000, 2000], dtype=np.int64)
    lines = [
        plotting.Line("a", "°F", t, np.array([1.0, 2.0, 1.5])),
        plotting.Line("s", "", t, np.array([0.0, 1.0, 0.0]), step=True, state=True),
    ]
    fig = plotting.figure(plotting.Picture("t", "line", 0, 3000, 600, 300), lines)
    main, state = fig.axes[0], fig.axes[1]
    assert main.get_ylabel() == "°F" and state.get_ylabel() == "state"
    assert main.lines[0].get_drawstyle() == "default"
    assert state.lines[0].get_drawstyle() == "steps-post"
    assert list(state.lines[0].get_ydata()) == [0.0, 1.0, 0.0]


async def test_images_are_cached_under_the_data_generation(env: Env) -> None:
    chart_id = await env.save()
    url = f"/api/charts/{chart_id}.png?theme=dark&width=640&height=360"
    first = await env.api.get(url, headers=ALICE)
    assert first.status_code == 200 and first.headers["x-cache-status"] == "MISS"
    before = env.sim.stats.requests
    again = await env.api.get(url, headers=ALICE)
    assert again.headers["x-cache-status"] == "HIT" and again.content == first.content
    assert env.sim.stats.requests == before
    not_modified = await env.api.get(url, headers={**ALICE, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    # the data changes (an operator invalidates it): the next image is drawn again
    body = {
        "site": SITE,
        "points": [env.analog],
        "start": format_time(START),
        "end": format_time(END),
    }
    done = await env.api.post("/api/cache/invalidate", json=body, headers={"X-Admin-Key": "k"})
    assert done.status_code == 200, done.text
    redrawn = await env.api.get(url, headers=ALICE)
    assert redrawn.status_code == 200 and redrawn.headers["x-cache-status"] != "HIT"


async def test_another_callers_chart_and_junk_ids_are_404(env: Env) -> None:
    chart_id = await env.save()
    for path, headers in (
        (f"/api/charts/{chart_id}.png", BOB),
        (f"/api/charts/{chart_id}.svg", BOB),
        ("/api/charts/AAAAAAAAAAAA.png", ALICE),
        ("/api/charts/%27%3B--.png", ALICE),
    ):
        r = await env.api.get(path, headers=headers)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json", path
    assert (await env.api.get(f"/api/charts/{chart_id}.png")).status_code == 401


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("width=0", "width"),
        ("width=99999999", "width"),
        ("height=-5", "height"),
        ("height=abc", "height"),
        ("width=4000&height=3000", "height"),
        ("theme=neon", "theme"),
    ],
)
async def test_absurd_sizes_and_themes_are_400(env: Env, query: str, param: str) -> None:
    chart_id = await env.save()
    r = await env.api.get(f"/api/charts/{chart_id}.png?{query}", headers=ALICE)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["param"] == param


async def test_a_chart_whose_points_are_gone_is_a_404_naming_them(env: Env) -> None:
    gone = "ses/demo_campus/no_such_point"
    chart_id = await env.save(points=[env.analog, gone])
    r = await env.api.get(f"/api/charts/{chart_id}.png", headers=ALICE)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert gone in r.json()["detail"]


async def test_a_range_without_samples_draws_an_empty_marked_picture(env: Env) -> None:
    ahead = {
        "preset": "custom",
        "start": format_time(NOW + DAY_MS),
        "end": format_time(NOW + 2 * DAY_MS),
    }
    chart_id = await env.save(range=ahead)
    r = await env.api.get(f"/api/charts/{chart_id}.svg", headers=ALICE)
    assert r.status_code == 200, r.text
    assert "no samples in this range" in r.text and r.headers["x-data-samples"] == "0"


async def test_upstream_down_is_a_problem_or_a_stale_marked_image(env: Env) -> None:
    cold = await env.save()
    env.sim.faults.fail_next = {"500": 10_000}
    r = await env.api.get(f"/api/charts/{cold}.png", headers=ALICE)
    assert r.status_code in (502, 503), r.text
    assert r.headers["content-type"] == "application/problem+json"
    # a preset range read once, then upstream fails as time moves on: the cached part
    # is drawn, marked stale in the image and the headers, and not kept
    env.sim.faults.fail_next = {}
    warm = await env.save(range={"preset": "24h"})
    assert (await env.api.get(f"/api/charts/{warm}.svg", headers=ALICE)).status_code == 200
    env.clock.ms += 3_600_000
    env.sim.faults.fail_next = {"500": 10_000}
    stale = await env.api.get(f"/api/charts/{warm}.svg", headers=ALICE)
    assert stale.status_code == 200, stale.text
    assert stale.headers["x-cache-status"] == "STALE"
    assert stale.headers["cache-control"] == "no-store"
    assert "stale: upstream unavailable" in stale.text
    again = await env.api.get(f"/api/charts/{warm}.svg", headers=ALICE)
    assert again.headers["x-cache-status"] == "STALE"  # not served from the cache


async def test_too_many_images_waiting_to_be_drawn_is_429(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsgate.api import chartimages

    slow_draw = chartimages._draw

    def slow(*args: Any) -> bytes:
        time.sleep(0.5)  # on the drawing thread: the next request finds it busy
        return slow_draw(*args)

    monkeypatch.setattr(chartimages, "_draw", slow)
    monkeypatch.setattr(chartimages, "MAX_WAITING", 1)
    chart_id = await env.save()
    # warm the data first, so the requests below differ only in their turn to draw
    assert (await env.api.get(f"/api/charts/{chart_id}.svg", headers=ALICE)).status_code == 200
    answers = await asyncio.gather(
        *(env.api.get(f"/api/charts/{chart_id}.png?width={w}", headers=ALICE) for w in (300, 400))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 429], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "2"
    assert chartimages._waiting == 0


@pytest.mark.parametrize("span_ms", [3_600_000, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 365 * DAY_MS])
@pytest.mark.parametrize(("width", "height"), [(200, 150), (4000, 2000)])
def test_every_preset_span_draws_at_the_smallest_and_largest_size(
    span_ms: int, width: int, height: int
) -> None:
    t = np.linspace(NOW - span_ms, NOW - 1, 50).astype(np.int64)
    lines = [
        plotting.Line("a", "°F", t, np.sin(np.arange(50.0))),
        plotting.Line("b", "kW", t, np.cos(np.arange(50.0)), step=True),
        plotting.Line("s", "", t, (np.arange(50) % 2).astype(np.float64), step=True, state=True),
    ]
    picture = plotting.Picture("x", "area", NOW - span_ms, NOW, width, height, "dark")
    png = plotting.encode(plotting.figure(picture, lines), "png")
    assert Image.open(io.BytesIO(png)).size == (width, height)  # and no warning was raised


async def test_a_revoked_token_gets_no_image_even_a_cached_one(env: Env) -> None:
    chart_id = await env.save()
    url = f"/api/charts/{chart_id}.png"
    assert (await env.api.get(url, headers=ALICE)).status_code == 200
    assert (await env.api.get(url, headers=ALICE)).headers["x-cache-status"] == "HIT"
    assert env.sim.tokens is not None
    del env.sim.tokens["alice"]  # upstream revokes the token
    env.clock.ms += 301_000  # TSGATE_ACCESS_TTL_S passes
    refused = await env.api.get(url, headers=ALICE)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


async def test_points_seen_to_report_on_change_are_steps_in_the_image_as_on_the_page(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No tag says a building's deadband points report on change of value; once their
    samples are stored their reporting pattern does, and the image draws them as steps,
    as the chart API describes them to the page (sampled points stay lines)."""
    clock = Clock(NOW)
    sim = create_simulator(seed=1, tokens={"alice": ["rhine_lab"]}, now_ms=clock)
    lab = sim.site_by_name["rhine_lab"]
    cov = next(p.name for p in lab.collecting if p.kind == "zone_temp_cov")
    sampled = next(p.name for p in lab.collecting if p.kind == "zone_temp")
    drawn: list[plotting.Line] = []
    pictures: list[plotting.Picture] = []

    async def capture(picture: plotting.Picture, lines: list[plotting.Line], fmt: str) -> bytes:
        drawn.extend(lines)
        pictures.append(picture)
        return b"<svg/>"

    monkeypatch.setattr(chartimages, "draw", capture)
    rng = {"preset": "custom", "start": format_time(START), "end": format_time(END)}
    config = {"site": "rhine_lab", "points": [cov, sampled], "view": "line", "range": rng}
    async with api_client(settings, sim, clock_ms=clock) as api:
        r = await api.post("/api/charts", json={"name": "lab", "config": config}, headers=ALICE)
        assert r.status_code == 201, r.text
        image = await api.get(f"/api/charts/{r.json()['id']}.svg", headers=ALICE)
        assert image.status_code == 200, image.text
        params = {"site": "rhine_lab", "points": f"{cov},{sampled}", "max_points": "400"}
        page = await api.get(
            "/api/timeseries",
            params={**params, "start": format_time(START), "end": format_time(END)},
            headers=ALICE,
        )
        assert page.status_code == 200, page.text
        occupied = await api.get(
            "/api/occupancy",
            params={"site": "rhine_lab", "start": format_time(START), "end": format_time(END)},
            headers=ALICE,
        )
        assert occupied.status_code == 200, occupied.text
    # the site's occupied hours are shaded behind the image as behind the page's chart
    spans = [tuple(s) for s in occupied.json()["occupied"]]
    assert len(spans) >= 1 and list(pictures[0].bands) == spans
    fig = plotting.figure(pictures[0], drawn)
    shaded = [p for p in fig.axes[0].patches if p.get_label() != plotting.BAND_LABEL]
    assert len(shaded) == len(spans)
    legend = fig.axes[0].get_legend()
    assert legend is not None and plotting.BAND_LABEL in [t.get_text() for t in legend.get_texts()]
    modes = {s["name"]: s["mode"] for s in page.json()["series"]}
    assert modes == {cov: "cov", sampled: "sampled"}
    steps = {line.label: line.step for line in drawn}
    labels = chartimages._labels([cov, sampled])
    assert steps == {labels[0]: True, labels[1]: False}
    # the steps are the simulator's samples, downsampled (M4 keeps each column's first)
    t_us, _ = sim.truth(cov, START, END)
    assert drawn[0].t_ms[0] == t_us[0] // 1000
