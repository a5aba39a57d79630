"""The chart page's monitor view in Chromium: the monitoring history drawn with the
page's charts (what each chart holds read back from ECharts and compared with what was
recorded), the alert rules and their history in tables, and axe-core finding no serious
violation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi import live_server, sim_client
from tests.browser import page_state, screenshot, wait_for
from tests.e2e.test_chart_page_a11y import _serious
from tsgate.app import create_app
from tsgate.ops.rules import AlertEvent
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_services

HOUR_MS = 3_600_000
HOURS = 12
RULES = "store_bytes=150/1e15,request_error_ratio=0.05/0.25"
RECORDED = {
    "database_bytes": [4096.0 + 100 * h for h in range(HOURS)],
    "store_bytes": [100.0 + 10 * h for h in range(HOURS)],
    "store_growth_bytes_per_day": [240.0] * HOURS,
    "request_error_ratio": [0.01 * (h % 4) for h in range(HOURS)],
    "requests": [50.0 + h for h in range(HOURS)],
    "job_backlog": [float(h % 3) for h in range(HOURS)],
}
PANEL_METRICS = {
    "sizes": ["database_bytes", "store_bytes"],
    "growth": ["store_growth_bytes_per_day"],
    "errors": ["request_error_ratio", "requests"],
    "jobs": ["job_backlog"],
}
READ_PANEL = """
const chart = echarts.getInstanceByDom(document.getElementById('monitor-' + arguments[0]));
const option = chart.getOption();
return {
  series: option.series.map((s) => ({ name: s.name, values: s.data.map((d) => d[1]) })),
  yAxes: option.yAxis.map((a) => a.name),
};
"""


async def _record(conf: Settings, now_ms: int) -> list[int]:
    sim = create_simulator(seed=1)
    async with open_services(conf, upstream=sim_client(sim)) as services:
        history = services.database.monitor
        times = [now_ms - (HOURS - h) * HOUR_MS for h in range(HOURS)]
        for i, at in enumerate(times):
            await history.record(at, {m: v[i] for m, v in RECORDED.items()})
        await history.add_events(
            [
                AlertEvent(times[6], "store_bytes", "ok", "warning", 160.0, "store over 150"),
                AlertEvent(times[3], "request_error_ratio", "ok", "warning", 0.06, "errors"),
                AlertEvent(times[4], "request_error_ratio", "warning", "ok", 0.0, "errors ok"),
            ]
        )
    return times


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("monitor")
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
        alert_rules=RULES,
        maintenance_interval_s=0,
        monitor_interval_s=0,
    )
    asyncio.run(_record(conf, int(time.time() * 1000)))
    sim = create_simulator(seed=1, tokens={"demo": ("demo_campus",)})
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _open_monitor(driver: Any, base_url: str) -> None:
    driver.get(base_url + "/")
    driver.execute_script("localStorage.clear()")
    wait_for(driver, lambda d: page_state(d) in ("idle", "ready"), "the page")
    driver.find_element("css selector", "#presets button[data-preset='24h']").click()
    driver.find_element("css selector", "#views button[data-view='monitor']").click()
    wait_for(
        driver,
        lambda d: page_state(d) == "ready" and d.find_elements("id", "monitor-sizes"),
        "the monitor view",
    )


def test_the_monitor_view_draws_the_history_and_the_alerts(base_url: str, browser: Any) -> None:
    _open_monitor(browser, base_url)
    assert browser.find_element("id", "monitor").is_displayed()
    assert not browser.find_element("id", "chart-wrap").is_displayed()
    for panel, metrics in PANEL_METRICS.items():
        drawn = browser.execute_script(READ_PANEL, panel)
        assert [s["name"] for s in drawn["series"]] == metrics, panel
        for s in drawn["series"]:
            assert s["values"] == pytest.approx(RECORDED[s["name"]]), (panel, s["name"])
        label = browser.find_element("id", f"monitor-{panel}").get_attribute("aria-label")
        assert label.startswith(
            browser.find_element("css selector", f"#monitor-{panel}")
            .find_element("xpath", "../h3")
            .text
        )
    assert browser.execute_script(READ_PANEL, "jobs")["yAxes"] == ["jobs queued"]
    assert browser.execute_script(READ_PANEL, "errors")["yAxes"] == ["share of 5xx", "requests"]

    rules, events = browser.find_elements("css selector", "#monitor table")
    rule_rows = [r.text for r in rules.find_elements("css selector", "tbody tr")]
    assert rule_rows[0].startswith("store_bytes warning 150")
    assert rule_rows[1].startswith("request_error_ratio ok 0.05 0.25")
    event_rows = [r.text for r in events.find_elements("css selector", "tbody tr")]
    assert len(event_rows) == 3
    assert "store over 150" in event_rows[0] and "errors" in event_rows[2]  # newest first
    screenshot(browser, "monitor-view.png")


def test_axe_finds_no_serious_violation_in_the_monitor_view(base_url: str, browser: Any) -> None:
    _open_monitor(browser, base_url)
    assert _serious(browser) == []
