"""The chart page used from the keyboard alone, and checked by axe-core in Chromium.

axe-core (vendored under ``tests/e2e/vendor``) is injected into the page as it stands
after each step; no serious or critical violation may remain, including colour contrast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asgi import live_server, sim_client
from tests.browser import DRAWN, page_state, wait_for
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SITES = ("demo_campus",)
SUPPLY_TEMP = "C.Drivers.BacnetNetwork.Ahu1.points.SaTemp"
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  (r) => done(r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary),
  }))),
  (e) => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]),
);
"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("a11y")
    sim = create_simulator(seed=1, tokens={"demo": SITES})
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _serious(driver: Any) -> list[dict[str, Any]]:
    driver.execute_script(AXE.read_text())
    driver.set_script_timeout(60)
    violations: list[dict[str, Any]] = driver.execute_async_script(RUN_AXE)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def _keys(driver: Any, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def _focused_id(driver: Any) -> str:
    return str(driver.execute_script("return document.activeElement.id"))


def _open_and_search(driver: Any, base_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url + "/")
    driver.execute_script("localStorage.clear()")
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", "#site option[value=demo_campus]"),
        "the site list",
    )
    # from the site selector onwards, only the keyboard
    driver.find_element("id", "site").send_keys("demo_campus")
    _keys(driver, Keys.TAB)
    assert _focused_id(driver) == "search"
    _keys(driver, "Ahu1.points.SaTemp")
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const r = document.getElementById('results');"
            "return r.dataset.state === 'ready' && r.dataset.query.includes('SaTemp')"
        ),
        "the search results",
    )


def test_a_point_is_picked_charted_and_removed_with_the_keyboard_alone(
    base_url: str, browser: Any
) -> None:
    from selenium.webdriver.common.keys import Keys

    _open_and_search(browser, base_url)
    _keys(browser, Keys.TAB, Keys.TAB)  # past the tags field, into the listbox
    assert _focused_id(browser) == "results"
    results = browser.find_element("id", "results")
    assert results.get_attribute("role") == "listbox"
    assert results.get_attribute("aria-multiselectable") == "true"

    _keys(browser, Keys.ARROW_DOWN)
    active_id = results.get_attribute("aria-activedescendant")
    option = browser.find_element("id", active_id)
    assert option.get_attribute("role") == "option"
    assert option.get_attribute("aria-selected") == "false"
    name = option.get_attribute("data-name")
    assert name.endswith(SUPPLY_TEMP)

    _keys(browser, " ")
    assert option.get_attribute("aria-selected") == "true"
    wait_for(browser, lambda d: page_state(d) in ("ready", "error"), "the chart")
    assert page_state(browser) == "ready"
    drawn = browser.execute_script(DRAWN)
    assert [s["name"].rsplit(".", 1)[-1] for s in drawn["series"]] == ["SaTemp"]

    # the chart has a text alternative naming what it shows, from the data drawn
    chart = browser.find_element("id", "chart")
    label = chart.get_attribute("aria-label")
    assert chart.get_attribute("role") == "img"
    assert "Line chart of 1 point" in label and "SaTemp" in label and "°F" in label
    values = browser.execute_script(
        "return echarts.getInstanceByDom(document.getElementById('chart'))"
        ".getOption().series[0].data.map((d) => d[1]).filter((v) => v !== null)"
    )
    assert f"{len(values)} values" in label

    # the remove button says what it removes, and works from the keyboard
    remove = browser.find_element("css selector", "#selected button")
    assert remove.get_attribute("aria-label") == f"Remove {name}"
    remove.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: page_state(d) == "idle", "the empty chart")
    assert browser.find_elements("css selector", "#selected li") == []
    assert option.get_attribute("aria-selected") == "false"
    assert _focused_id(browser) == "results"  # the focus is not lost to <body>
    assert chart.get_attribute("aria-label").startswith("Chart: nothing drawn")


def test_arrows_move_through_the_options_and_stay_inside(base_url: str, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    _open_and_search(browser, base_url)
    browser.find_element("id", "results").click()
    results = browser.find_element("id", "results")
    count = len(browser.find_elements("css selector", '#results [role="option"]'))
    assert count >= 1
    _keys(browser, Keys.END)
    assert results.get_attribute("aria-activedescendant") == f"result-{count - 1}"
    _keys(browser, Keys.ARROW_DOWN)  # past the end: stays on the last
    assert results.get_attribute("aria-activedescendant") == f"result-{count - 1}"
    _keys(browser, Keys.HOME, Keys.ARROW_UP)
    assert results.get_attribute("aria-activedescendant") == "result-0"


def test_no_matching_points_is_said_outside_the_listbox(base_url: str, browser: Any) -> None:
    _open_and_search(browser, base_url)
    _keys(browser, "-no-such-point")
    wait_for(
        browser,
        lambda d: d.find_element("id", "results-empty").is_displayed(),
        "the empty result",
    )
    assert browser.find_elements("css selector", "#results li") == []
    assert _serious(browser) == []


def test_axe_finds_no_serious_violation_on_a_drawn_chart(base_url: str, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    _open_and_search(browser, base_url)
    assert _serious(browser) == [], "before any point is picked"
    _keys(browser, Keys.TAB, Keys.TAB, Keys.ARROW_DOWN, " ")
    wait_for(browser, lambda d: page_state(d) == "ready", "the chart")
    violations = _serious(browser)
    assert violations == [], json.dumps(violations, indent=1)
    browser.find_element("css selector", '#views [data-view="calendar"]').click()
    wait_for(browser, lambda d: page_state(d) == "ready", "the calendar")
    assert _serious(browser) == []


def test_the_check_itself_sees_a_contrast_fault_and_a_nameless_button(
    base_url: str, browser: Any
) -> None:
    # the page as it was: tags in #8593a3 (3.1:1) and a remove button announced as "×"
    _open_and_search(browser, base_url)
    browser.execute_script(
        "for (const t of document.querySelectorAll('.tags')) t.style.color = '#8593a3';"
        "const b = document.createElement('button'); b.setAttribute('aria-label', '');"
        "document.getElementById('selected').append(b);"
    )
    found = {v["id"] for v in _serious(browser)}
    assert {"color-contrast", "button-name"} <= found
    browser.refresh()
