"""Gap bands on the chart page, in headless Chromium: a gateway outage is a shaded band
behind its point's line (the spans of the answer's ``metadata.gaps``), named in the
chart's text alternative, with no serious axe-core violation."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser import screenshot
from tests.e2e.test_chart_page_a11y import _serious
from tests.e2e.test_chart_page_semantics import (  # base_url serves this module's sim
    FAN_STATUS,
    SITE,
    SUPPLY_TEMP,
    _api,
    _open,
    _pick,
    _press,
    base_url,
)
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import parse_time

HOUR_MS = 3_600_000
# the bands each series carries, and the chart's text alternative
BANDS = """
const option = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
return {
  bands: option.series.map(
    (s) => ((s.markArea || {}).data || []).map(([a, b]) => [a.xAxis, b.xAxis])),
  description: option.aria.label.description,
  loads: window.__tsgateLoads,
};
"""


@pytest.fixture(scope="module")
def outage() -> tuple[int, int]:
    now = int(time.time() * 1000)
    return now - 30 * HOUR_MS - 123_456, now - 26 * HOUR_MS


@pytest.fixture(scope="module")
def sim(outage: tuple[int, int]) -> Simulator:
    sim = create_simulator(seed=1, tokens={"demo": (SITE,)})
    sim.faults.outages = [Outage(*outage, backlog_ms=None, site=SITE, points=(SUPPLY_TEMP,))]
    return sim


__all__ = ["base_url"]  # a fixture: the chart page on this module's simulator


def test_an_outage_is_a_shaded_band_behind_its_point(
    base_url: str, browser: Any, outage: tuple[int, int]
) -> None:
    _open(browser, base_url)
    _pick(browser, SUPPLY_TEMP, FAN_STATUS)
    _press(browser, '#presets [data-preset="7d"]', "max_points=")

    drawn = browser.execute_script(BANDS)
    load = drawn["loads"][-1]
    answer = _api(base_url, load["url"])
    gaps = answer["metadata"]["gaps"]
    # exactly the answer's gaps, on the series they belong to
    assert drawn["bands"][0] == gaps[SUPPLY_TEMP]
    assert drawn["bands"][1] == gaps.get(FAN_STATUS, [])
    # the outage is one band: from the last sample before it to the first after it
    (band,) = [b for b in drawn["bands"][0] if b[1] - b[0] > HOUR_MS]
    assert band[0] <= outage[0] < outage[1] <= band[1]
    assert band[1] - band[0] < outage[1] - outage[0] + 2 * 300_000
    start = parse_time("start", parse_qs(urlsplit(load["url"]).query)["start"][0])
    assert all(a >= start for a, _ in drawn["bands"][0])
    assert "SaTemp:" in drawn["description"] and "(shaded), the longest 4" in drawn["description"]
    assert _serious(browser) == []
    screenshot(browser, "chart-page-gap-band.png")
