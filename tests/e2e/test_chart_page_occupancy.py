"""Occupancy bands on the chart page, in headless Chromium: where the site has schedule
points, the occupied spans of the charted range are shaded behind the chart (the spans
``/api/occupancy`` answers, which are a walk over the simulator's schedule samples), in
a colour of their own with a legend entry, said in the chart's text alternative, shown
or hidden from the keyboard; no band on a site without schedule points; no serious
axe-core violation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.test_occupancy import merged, walk
from tests.asgi import live_server, sim_client
from tests.browser import page_state, screenshot, wait_for
from tests.e2e.test_chart_page_a11y import _focused_id, _keys, _serious
from tests.e2e.test_chart_page_semantics import FAN_STATUS, SUPPLY_TEMP
from tsgate.api.occupancy import LOOKBACK_MS
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time, parse_time

LAB = "rhine_lab"
NAME = "Occupied (schedule)"
# the bands the page drew (per series name), its gap colour and its text alternative
DRAWN = """
const option = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
return {
  bands: option.series.filter((s) => s.name === arguments[0]).map((s) => ({
    grid: s.xAxisIndex, color: s.markArea.itemStyle.color,
    spans: s.markArea.data.map(([a, b]) => [a.xAxis, b.xAxis]),
  })),
  legend: (option.legend[0].data || []).map((d) => (typeof d === 'string' ? d : d.name)),
  names: option.series.map((s) => s.name),
  description: option.aria.label.description,
  loads: window.__tsgateLoads,
};
"""


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return create_simulator(seed=1, tokens={"demo": (LAB, "demo_campus")})


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, sim: Simulator) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("occupancy")
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _open(driver: Any, url: str, site: str) -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(url + "/")
    driver.execute_script("localStorage.clear()")
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", f"#site option[value={site}]"),
        "the site list",
    )
    Select(driver.find_element("id", "site")).select_by_value(site)


def _pick(driver: Any, search: str, *names: str) -> None:
    driver.find_element("id", "search").send_keys(search)
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const r = document.getElementById('results');"
            "return r.dataset.state === 'ready' && r.dataset.query.includes(arguments[0])",
            "q=" + search.replace(":", "%3A"),
        ),
        "the search results",
    )
    for name in names:
        selector = f'#results li[data-name="{name}"]'
        wait_for(driver, lambda d, s=selector: d.find_elements("css selector", s), name)[0].click()


PRESSED_7D = (
    "return document.querySelector('#presets [data-preset=\"7d\"]').getAttribute('aria-pressed')"
)
LAST_URL = "return (window.__tsgateLoads || []).at(-1)?.url || ''"


def _week_drawn(d: Any) -> bool:
    return (
        page_state(d) == "ready"
        and "max_points=" in d.execute_script(LAST_URL)
        and d.execute_script(PRESSED_7D) == "true"
    )


def _drawn_week(driver: Any) -> None:
    driver.find_element("css selector", '#presets [data-preset="7d"]').click()
    wait_for(driver, lambda d: page_state(d) == "error" or _week_drawn(d), "the week's chart")
    assert page_state(driver) == "ready", driver.find_element("id", "message").text


def _range(load_url: str) -> tuple[int, int]:
    q = parse_qs(urlsplit(load_url).query)
    return parse_time("start", q["start"][0]), parse_time("end", q["end"][0])


def test_the_schedule_is_shaded_behind_the_chart(
    base_url: str, browser: Any, sim: Simulator
) -> None:
    lab = sim.site_by_name[LAB]
    temp = next(p.name for p in lab.collecting if p.kind == "zone_temp_cov")
    compressor = next(p.name for p in lab.collecting if p.kind == "compressor")
    schedules = sorted(p.name for p in lab.collecting if p.kind == "occ_schedule")
    _open(browser, base_url, LAB)
    _pick(browser, "9000:1-9001", temp, compressor)
    _drawn_week(browser)

    drawn = browser.execute_script(DRAWN, NAME)
    start, end = _range(drawn["loads"][-1]["url"])
    asked_ms = int(time.time() * 1000)
    params = {"site": LAB, "start": format_time(start), "end": format_time(end)}
    answer = httpx.get(base_url + "/api/occupancy", params=params, timeout=60).json()
    spans = [tuple(s) for s in answer["occupied"]]
    assert answer["metadata"]["points"] == schedules and len(spans) >= 4  # weekdays
    # the API's spans are the simulator's schedule, each value held to the next sample
    # (a span still open when it was asked ends at that moment: compared by its start)
    truths = [sim.truth(n, start - LOOKBACK_MS, end) for n in schedules]
    stop = min(end, asked_ms)
    walked = merged([walk((t // 1000).tolist(), v.tolist(), start, stop) for t, v in truths])
    settled = [s for s in walked if s[1] < stop - 60_000]
    assert spans[: len(settled)] == settled
    assert len(spans) - len(settled) <= 1 and len(walked) - len(settled) <= 1
    if len(spans) > len(settled):
        assert spans[-1][0] == walked[-1][0]
    # the page shades exactly them, on the value grid and the on/off grid
    assert [b["grid"] for b in drawn["bands"]] == [0, 1]
    for band in drawn["bands"]:
        assert [tuple(s) for s in band["spans"]][: len(settled)] == settled
        assert len(band["spans"]) == len(spans)
        assert band["color"] != "rgba(200, 60, 40, 0.12)"  # not the gap bands' colour
    assert NAME in drawn["names"]
    assert f"Occupied by the site's schedule in {len(spans)} spans" in drawn["description"]
    assert "h in all (shaded blue)" in drawn["description"]
    assert _serious(browser) == []
    screenshot(browser, "chart-page-occupancy.png")

    # the toggle, from the keyboard alone: hidden, then shown again
    from selenium.webdriver.common.keys import Keys

    button = browser.find_element("id", "occupancy")
    assert button.get_attribute("aria-pressed") == "true" and button.is_enabled()
    browser.execute_script("document.getElementById('compare').focus()")
    _keys(browser, Keys.TAB)
    assert _focused_id(browser) == "occupancy"
    _keys(browser, Keys.ENTER)
    hidden = browser.execute_script(DRAWN, NAME)
    assert hidden["bands"] == [] and "Occupied" not in hidden["description"]
    assert button.get_attribute("aria-pressed") == "false"
    _keys(browser, " ")
    shown = browser.execute_script(DRAWN, NAME)
    assert shown["bands"][0]["spans"] == drawn["bands"][0]["spans"]
    assert button.get_attribute("aria-pressed") == "true"
    assert _serious(browser) == []


def test_a_site_without_schedule_points_has_no_bands(base_url: str, browser: Any) -> None:
    _open(browser, base_url, "demo_campus")
    _pick(browser, "Ahu1.points.S", SUPPLY_TEMP, FAN_STATUS)
    _drawn_week(browser)
    drawn = browser.execute_script(DRAWN, NAME)
    assert drawn["bands"] == [] and NAME not in drawn["names"]
    assert "Occupied" not in drawn["description"]
    button = browser.find_element("id", "occupancy")
    assert not button.is_enabled() and button.get_attribute("aria-pressed") == "false"
    assert _serious(browser) == []
