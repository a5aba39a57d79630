"""The chart page in headless Chromium against tsgate served over real HTTP.

The page is driven as a user would (site selector, point search, range buttons); what it
drew is read back from the ECharts instance, and how it loaded from the page's own record
of each load (``window.__tsgateLoads``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asgi import live_server, sim_client
from tests.browser import DRAWN, page_state, screenshot, wait_for
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

SITES = ("demo_campus", "office_tower", "elm_school")
SUPPLY_TEMP = "C.Drivers.BacnetNetwork.Ahu1.points.SaTemp"  # °F
FAN_POWER = "C.Drivers.BacnetNetwork.Ahu1.points.SfPower"  # kW
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("page")
    sim = create_simulator(seed=1, tokens={"demo": SITES})
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",  # like `tsgate serve --demo`: the page needs no token
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    driver.execute_script("localStorage.clear()")
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", "#site option[value=demo_campus]"),
        "the site list",
    )


def _pick_points(driver: Any, *suffixes: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "site")).select_by_value("demo_campus")
    driver.find_element("id", "search").send_keys("Ahu1.points")
    driver.find_element("id", "tags").send_keys("ahu")
    wait_for(driver, _results_for("Ahu1.points", "ahu"), "the search results")
    for suffix in suffixes:
        selector = f'#results li[data-name$="{suffix}"]'
        row = wait_for(driver, lambda d, s=selector: d.find_elements("css selector", s), suffix)[0]
        assert row.find_element("css selector", ".unit").text  # units are shown
        row.click()


def _results_for(q: str, tags: str) -> Any:
    def shown(driver: Any) -> bool:
        return bool(
            driver.execute_script(
                "const r = document.getElementById('results');"
                "return r.dataset.state === 'ready' && r.dataset.query === arguments[0];",
                f"site=demo_campus&q={q}&tags={tags}&limit=100",
            )
        )

    return shown


def _press(driver: Any, selector: str) -> None:
    driver.find_element("css selector", selector).click()
    wait_for(driver, lambda d: page_state(d) in ("ready", "error"), "the chart to load")
    assert page_state(driver) == "ready", driver.find_element("id", "message").text


def test_two_points_over_30_days_are_drawn_from_msgpack(base_url: str, browser: Any) -> None:
    _open(browser, base_url + "/")
    _pick_points(browser, SUPPLY_TEMP, FAN_POWER)
    _press(browser, '#presets [data-preset="30d"]')

    drawn = browser.execute_script(DRAWN)
    assert [s["name"].rsplit(".", 1)[-1] for s in drawn["series"]] == ["SaTemp", "SfPower"]
    assert all(s["type"] == "line" and s["values"] > 100 for s in drawn["series"])
    assert drawn["yAxes"] == ["°F", "kW"]  # a y-axis per unit
    assert [s["yAxisIndex"] for s in drawn["series"]] == [0, 1]

    load = drawn["loads"][-1]
    assert load["format"] == "msgpack" and "application/x-msgpack" in load["contentType"]
    assert "layout=columnar" in load["url"] and "max_points=" in load["url"]
    assert load["samples"] >= 2 * 30 * 288 * 0.9  # 5-minute samples behind the picture
    assert load["points"] < load["samples"]  # downsampled to the chart's width
    assert load["bytes"] > 0 and load["cacheStatus"] in ("MISS", "PARTIAL", "HIT")
    info = browser.find_element("id", "load-info").text
    assert "msgpack" in info and "samples" in info and " ms" in info
    path = screenshot(browser, "chart-page-30d.png")
    assert path.stat().st_size > 10_000


def test_calendar_view_asks_for_daily_means(base_url: str, browser: Any) -> None:
    _open(browser, base_url + "/")
    _pick_points(browser, SUPPLY_TEMP)
    _press(browser, '#presets [data-preset="30d"]')
    _press(browser, '#views [data-view="calendar"]')

    drawn = browser.execute_script(DRAWN)
    assert [s["type"] for s in drawn["series"]] == ["heatmap"]
    assert 29 <= drawn["series"][0]["values"] <= 31
    assert "interval=1d" in drawn["loads"][-1]["url"] and "agg=avg" in drawn["loads"][-1]["url"]


def test_a_saved_chart_comes_back_by_url(base_url: str, browser: Any) -> None:
    _open(browser, base_url + "/")
    _pick_points(browser, SUPPLY_TEMP, FAN_POWER)
    _press(browser, '#presets [data-preset="7d"]')
    _press(browser, '#views [data-view="area"]')
    browser.find_element("id", "save").click()
    prompt = wait_for(browser, lambda d: d.switch_to.alert, "the name prompt")
    prompt.send_keys("AHU 1 week")
    prompt.accept()
    wait_for(browser, lambda d: "chart=" in d.current_url, "the chart's URL")
    saved_url = browser.current_url

    _open(browser, base_url + "/")  # a fresh visit, then the saved URL
    browser.get(saved_url)
    wait_for(browser, lambda d: page_state(d) == "ready", "the saved chart")
    drawn = browser.execute_script(DRAWN)
    assert len(drawn["series"]) == 2 and drawn["yAxes"] == ["°F", "kW"]
    span_ms = _span_ms(drawn["loads"][-1]["url"])
    assert abs(span_ms - 7 * DAY_MS) < 60_000
    pressed = browser.find_element("css selector", '#views [data-view="area"]')
    assert pressed.get_attribute("aria-pressed") == "true"


def test_a_rejected_token_shows_the_problem_not_a_blank_chart(base_url: str, browser: Any) -> None:
    _open(browser, base_url + "/")
    token = browser.find_element("id", "token")
    token.send_keys("not-a-valid-token")
    browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
    try:
        wait_for(browser, lambda d: page_state(d) == "error", "the error")
        message = browser.find_element("id", "message").text
        assert message.startswith("Unauthorized") and "token" in message
        overlay = browser.find_element("id", "chart-overlay")
        assert overlay.is_displayed() and overlay.text == message
    finally:
        browser.execute_script("localStorage.clear()")


def _span_ms(url: str) -> int:
    from urllib.parse import parse_qs, urlsplit

    from tsgate.wire.ace import parse_time

    q = parse_qs(urlsplit(url).query)
    return parse_time("end", q["end"][0]) - parse_time("start", q["start"][0])


def test_screenshot_folder_is_ignored_by_git() -> None:
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text()
    assert "test-artifacts/" in ignore.splitlines()


def test_zooming_re_queries_the_new_range_at_the_chart_width(base_url: str, browser: Any) -> None:
    _open(browser, base_url + "/")
    _pick_points(browser, SUPPLY_TEMP)
    _press(browser, '#presets [data-preset="30d"]')
    before = len(browser.execute_script("return window.__tsgateLoads"))

    browser.execute_script(
        "echarts.getInstanceByDom(document.getElementById('chart'))"
        ".dispatchAction({type: 'dataZoom', start: 50, end: 100});"
    )
    wait_for(
        browser,
        lambda d: (
            len(d.execute_script("return window.__tsgateLoads")) > before
            and page_state(d) == "ready"
        ),
        "the zoomed load",
    )
    load = browser.execute_script("return window.__tsgateLoads.at(-1)")
    assert abs(_span_ms(load["url"]) - 15 * DAY_MS) < 60_000
    width = browser.execute_script("return document.getElementById('chart').clientWidth")
    max_points = int(load["url"].split("max_points=")[1].split("&")[0])
    assert 2 * width < max_points <= 4 * width  # four values per pixel column (M4)
    assert browser.find_element("id", "zoom-back").is_enabled()
