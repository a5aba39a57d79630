"""The chart page on building-automation points, in headless Chromium: a fan's duty cycle
on the site's local days, on/off points as steps on their own axis, last week overlaid,
and the quality table (sorted, one click charts a point, checked by axe-core)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.asgi import live_server, sim_client
from tests.browser import page_state, screenshot, wait_for
from tests.e2e.test_chart_page_a11y import _serious
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_time

SITE = "demo_campus"
PREFIX = "ses/demo_campus/192.168.96.4/n4/MercyCampus/C.Drivers.BacnetNetwork.Ahu1.points."
SUPPLY_TEMP = PREFIX + "SaTemp"  # °F, sampled
FAN_STATUS = PREFIX + "SfStatus"  # on/off
DAY_MS = 86_400_000

# what the page drew: per series its name, axes, step mode, line style and data
DRAWN = """
const option = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
return {
  series: option.series.map((s) => ({
    name: s.name, type: s.type, xAxisIndex: s.xAxisIndex, yAxisIndex: s.yAxisIndex,
    step: s.step || null, dashed: (s.lineStyle || {}).type === 'dashed', data: s.data,
  })),
  yAxes: (option.yAxis || []).map((a) => a.name),
  grids: (option.grid || []).length,
  loads: window.__tsgateLoads,
};
"""


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return create_simulator(seed=1, tokens={"demo": (SITE,)})


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, sim: Simulator) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("semantics")
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _open(driver: Any, url: str) -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(url + "/")
    driver.execute_script("localStorage.clear()")
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", f"#site option[value={SITE}]"),
        "the site list",
    )
    Select(driver.find_element("id", "site")).select_by_value(SITE)


def _pick(driver: Any, *names: str) -> None:
    driver.find_element("id", "search").send_keys("Ahu1.points.S")
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const r = document.getElementById('results');"
            "return r.dataset.state === 'ready' && r.dataset.query.includes('q=Ahu1.points.S&')"
        ),
        "the search results",
    )
    for name in names:
        selector = f'#results li[data-name="{name}"]'
        wait_for(driver, lambda d, s=selector: d.find_elements("css selector", s), name)[0].click()


def _press(driver: Any, selector: str, asks: str) -> None:
    """Click, then wait until the chart asking ``asks`` (a part of its URL) is drawn."""
    driver.find_element("css selector", selector).click()
    _drawn(driver, asks)


def _drawn(driver: Any, asks: str) -> None:
    last_url = "return (window.__tsgateLoads || []).at(-1)?.url || ''"
    wait_for(
        driver,
        lambda d: (
            page_state(d) == "error"
            or (page_state(d) == "ready" and asks in d.execute_script(last_url))
        ),
        f"the chart asking {asks}",
    )
    assert page_state(driver) == "ready", driver.find_element("id", "message").text


def _api(base_url: str, url: str) -> Any:
    """The same question asked of the API directly (JSON, series layout)."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    query["layout"] = "series"
    r = httpx.get(base_url + "/api/timeseries", params=query, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_fans_duty_cycle_on_the_sites_local_days(base_url: str, browser: Any) -> None:
    _open(browser, base_url)
    _pick(browser, SUPPLY_TEMP, FAN_STATUS)
    _press(browser, '#presets [data-preset="30d"]', "max_points=")
    _press(browser, '#views [data-view="calendar"]', "agg=duty")

    drawn = browser.execute_script(DRAWN)
    means, duty = drawn["loads"][-2:]
    for load, agg in ((means, "avg"), (duty, "duty")):
        q = parse_qs(urlsplit(load["url"]).query)
        assert (q["interval"], q["tz"], q["agg"]) == (["1d"], ["site"], [agg])
    assert parse_qs(urlsplit(duty["url"]).query)["points"] == [FAN_STATUS]
    assert [s["type"] for s in drawn["series"]] == ["heatmap", "heatmap"]
    # each cell is the API's local day (New York, near Boston) and its value
    answer = _api(base_url, duty["url"])
    zone = ZoneInfo(answer["metadata"]["timeZone"])
    assert str(zone) == "America/New_York"
    expected = [
        [dt.datetime.fromtimestamp(t / 1000, zone).date().isoformat(), v]
        for t, v in answer["series"][0]["data"]
        if v is not None
    ]
    assert 29 <= len(expected) <= 31
    assert all(0 <= v <= 100 for _, v in expected) and len({v for _, v in expected}) > 1
    cells = drawn["series"][1]["data"]
    assert [day for day, _ in cells] == [day for day, _ in expected]
    # float32 on the wire; today's cell may gain samples between the page's read and ours
    assert [v for _, v in cells[:-1]] == pytest.approx([v for _, v in expected[:-1]], rel=1e-6)
    title = browser.execute_script(
        "return echarts.getInstanceByDom(document.getElementById('chart')).getOption()"
        ".title.map((t) => t.text)"
    )
    assert title[1].endswith("% on (duty cycle)")
    screenshot(browser, "chart-page-duty-calendar.png")


def test_on_off_points_step_on_their_own_axis_and_last_week_overlays(
    base_url: str, browser: Any
) -> None:
    _open(browser, base_url)
    _pick(browser, SUPPLY_TEMP, FAN_STATUS)
    _press(browser, '#presets [data-preset="7d"]', "max_points=")

    drawn = browser.execute_script(DRAWN)
    assert drawn["grids"] == 2 and drawn["yAxes"] == ["°F", "on/off"]
    temp, fan = drawn["series"]
    assert (temp["xAxisIndex"], temp["yAxisIndex"], temp["step"]) == (0, 0, None)
    assert (fan["xAxisIndex"], fan["yAxisIndex"], fan["step"]) == (1, 1, "end")
    assert {v for _, v in fan["data"] if v is not None} == {0, 1}

    _press(browser, "#compare", "compare=-7d")
    assert browser.find_element("id", "compare").get_attribute("aria-pressed") == "true"
    drawn = browser.execute_script(DRAWN)
    load = drawn["loads"][-1]
    assert parse_qs(urlsplit(load["url"]).query)["compare"] == ["-7d"]
    names = [s["name"] for s in drawn["series"]]
    assert names == ["SaTemp", "SaTemp (last week)", "SfStatus", "SfStatus (last week)"]
    assert [s["dashed"] for s in drawn["series"]] == [False, True, False, True]
    # last week's values, shifted onto this week, as the API answers them
    answer = _api(base_url, load["url"])
    shifted = [s for s in answer["series"] if s.get("offsetMs") == -7 * DAY_MS]
    assert [s["name"] for s in shifted] == [SUPPLY_TEMP, FAN_STATUS]
    for drew, truth in zip(drawn["series"][1::2], shifted, strict=True):
        assert [p[0] for p in drew["data"]] == [p[0] for p in truth["data"]]
        drawn_values = [p[1] for p in drew["data"]]
        assert drawn_values == pytest.approx([p[1] for p in truth["data"]], rel=1e-6)  # float32
    start = parse_time("start", parse_qs(urlsplit(load["url"]).query)["start"][0])
    assert min(p[0] for p in drawn["series"][1]["data"]) >= start
    screenshot(browser, "chart-page-last-week.png")


def _rows(driver: Any) -> list[dict[str, Any]]:
    return list(
        driver.execute_script(
            "return [...document.querySelectorAll('#quality tbody tr')].map((tr) => ({"
            "name: tr.dataset.name, flags: tr.dataset.flags,"
            "coverage: Number(tr.children[2].textContent)}))"
        )
    )


def test_the_quality_table_sorts_and_charts_a_point(
    base_url: str, browser: Any, sim: Simulator
) -> None:
    _open(browser, base_url)
    browser.find_element("css selector", '#views [data-view="quality"]').click()
    # the first quality view reads the whole site's day cold (2,123 points): on a loaded
    # runner that can take longer than a warm page's wait; what is tested is the table
    wait_for(
        browser,
        lambda d: page_state(d) == "ready" and _rows(d),
        "the quality table",
        timeout_s=180,
    )
    assert not browser.find_element("id", "chart-wrap").is_displayed()

    rows = _rows(browser)
    collecting = {p.name for p in sim.site_by_name[SITE].collecting}
    assert {r["name"] for r in rows} == collecting
    coverage = [r["coverage"] for r in rows]
    assert coverage == sorted(coverage)  # worst coverage first
    caption = browser.find_element("css selector", "#quality caption").text
    assert caption.startswith(f"{len(collecting)} points,") and "America/New_York" in caption

    header = browser.find_element("css selector", '#quality button[data-sort="coveragePct"]')
    header.click()
    th = browser.find_element("css selector", '#quality th[aria-sort="descending"]')
    assert th.text.startswith("Coverage %")
    assert [r["coverage"] for r in _rows(browser)] == sorted(coverage, reverse=True)
    browser.find_element("css selector", '#quality button[data-sort="name"]').click()
    assert [r["name"] for r in _rows(browser)] == sorted(collecting)
    assert _serious(browser) == []

    target = f'#quality tr[data-name="{FAN_STATUS}"] button.chart-point'
    _press(browser, target, "points=" + quote(FAN_STATUS, safe="") + "&")
    assert not browser.find_element("id", "quality").is_displayed()
    drawn = browser.execute_script(DRAWN)
    assert [s["name"] for s in drawn["series"]] == [FAN_STATUS.rsplit("/", 1)[-1]]
    assert drawn["series"][0]["step"] == "end" and drawn["yAxes"] == ["on/off"]
    line = browser.find_element("css selector", '#views [data-view="line"]')
    assert line.get_attribute("aria-pressed") == "true"
    selected = browser.find_elements("css selector", "#selected li")
    assert [li.get_attribute("title") for li in selected] == [FAN_STATUS]
