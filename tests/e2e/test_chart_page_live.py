"""The chart page's "Live" toggle in headless Chromium: new samples arrive over the event
stream and are drawn once each; without a usable stream the page polls instead.

The gateway and the simulator share a clock running 60 times faster than the wall
clock, so that the 5-minute sweeps of the simulated points come every 5 seconds; the
poller polls every second (``TSGATE_LIVE_POLL_S``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi import live_server, sim_client
from tests.browser import page_state, wait_for
from tests.e2e.test_chart_page_a11y import _serious
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

SITES = ("demo_campus",)
SUPPLY_TEMP = "C.Drivers.BacnetNetwork.Ahu1.points.SaTemp"
SPEED = 60

TIMES = """
const chart = echarts.getInstanceByDom(document.getElementById('chart'));
return chart.getOption().series.map((s) => s.data.map((d) => d[0]));
"""
FAILING_EVENTSOURCE = """
window.EventSource = class {
  static CLOSED = 2;
  constructor() { this.readyState = 0; this.handlers = {}; setTimeout(() => this.fail(), 50); }
  addEventListener(name, fn) { this.handlers[name] = fn; }
  fail() { this.readyState = 2; this.handlers.error?.(new Event('error')); }
  close() { this.readyState = 2; }
};
"""


class FastClock:
    """Epoch ms running ``SPEED`` times faster than the wall clock, from now on."""

    def __init__(self) -> None:
        self.origin = time.time()

    def __call__(self) -> int:
        return int((self.origin + (time.time() - self.origin) * SPEED) * 1000)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("live")
    clock = FastClock()
    sim = create_simulator(seed=1, tokens={"demo": SITES}, now_ms=clock)
    sim.faults.visibility_delay_s = 60  # a sample is visible upstream a minute after its time
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
        live_poll_s=1.0,
        live_min_poll_s=0.5,
        recheck_interval_s=0,
    )
    with live_server(create_app(conf, upstream=sim_client(sim), clock_ms=clock)) as url:
        yield url


def _chart_one_point(driver: Any, base_url: str, token: str = "") -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(base_url + "/")
    driver.execute_script("localStorage.clear()")
    if token:
        driver.execute_script("localStorage.setItem('tsgate.token', arguments[0])", token)
        driver.get(base_url + "/")
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", "#site option[value=demo_campus]"),
        "sites",
    )
    Select(driver.find_element("id", "site")).select_by_value("demo_campus")
    driver.find_element("id", "search").send_keys("Ahu1.points.SaTemp")
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const r = document.getElementById('results');"
            "return r.dataset.state === 'ready' && r.dataset.query.includes('SaTemp')"
        ),
        "the search results",
    )
    selector = f'#results li[data-name$="{SUPPLY_TEMP}"]'
    wait_for(driver, lambda d: d.find_elements("css selector", selector), "the point")[0].click()
    driver.find_element("css selector", '#presets [data-preset="1h"]').click()
    wait_for(driver, lambda d: page_state(d) in ("ready", "error"), "the chart")
    assert page_state(driver) == "ready", driver.find_element("id", "message").text


def _live(driver: Any) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script("return window.__tsgateLive")
    return state


def test_live_draws_new_samples_once_each_from_the_stream(base_url: str, browser: Any) -> None:
    _chart_one_point(browser, base_url)
    before = browser.execute_script(TIMES)[0]
    button = browser.find_element("id", "live")
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    wait_for(browser, lambda d: _live(d)["mode"] == "sse", "the event stream")
    assert button.get_attribute("aria-pressed") == "true"
    # a sweep every 5 s of wall time: within 20 s new samples are pushed and drawn
    wait_for(browser, lambda d: _live(d)["samples"] >= 2, "pushed samples", timeout_s=40)
    after = browser.execute_script(TIMES)[0]
    assert after == sorted(set(after))  # each sample once, in time order
    assert after[-1] > before[-1]
    assert set(before) - set(after) <= {before[0]}  # only the oldest may slide out
    assert _serious(browser) == []
    button.click()  # off again: the stream is closed
    wait_for(browser, lambda d: _live(d)["mode"] == "off", "live off")
    assert button.get_attribute("aria-pressed") == "false"


def test_with_a_token_the_page_polls(base_url: str, browser: Any) -> None:
    # EventSource cannot send a bearer token: the page reloads the chart instead
    _chart_one_point(browser, base_url, token="demo")
    browser.find_element("id", "live").click()
    wait_for(browser, lambda d: _live(d)["mode"] == "poll", "polling")
    assert page_state(browser) == "ready"


def test_a_failing_stream_falls_back_to_polling(base_url: str, browser: Any) -> None:
    _chart_one_point(browser, base_url)
    browser.execute_script(FAILING_EVENTSOURCE)
    browser.find_element("id", "live").click()
    wait_for(browser, lambda d: _live(d)["mode"] == "poll", "polling after the stream failed")
    assert page_state(browser) == "ready"
