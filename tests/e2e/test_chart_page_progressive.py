"""A long cold chart drawn month by month: the page reads a progressive job's parts as
they are ready (newest first) and draws them joined while the older months are fetched;
the finished chart is the one-request answer. Hostile: the query changed mid-load, the
job cancelled, the token revoked, upstream failing.

The real app serves the page with the simulated campus behind a small inline-fetch
budget and a slow upstream (each request takes ``LATENCY_S``), so a year of a few points
is a job of a week and 13 monthly slices that takes seconds. Every test charts points of its own, so
each starts cold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from tests.asgi import live_server, sim_client
from tests.browser import DRAWN, page_state, screenshot, wait_for
from tests.e2e.test_chart_page_a11y import _serious
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

SITE = "demo_campus"
TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = 4
LATENCY_S = 0.15
JOB_WAIT_S = 180.0

PARTIALS = "return window.__tsgatePartials || [];"
# every drawn series' non-null [t, v] pairs, as ECharts holds them
DATA = """
const option = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
return option.series.map((s) => s.data.filter((d) => d[1] !== null));
"""


class Served(NamedTuple):
    url: str
    sim: Simulator


def _serve(tmp: Path) -> Iterator[Served]:
    sim = create_simulator(seed=1, tokens={TOKEN: (SITE,)})
    sim.faults.latency_s = LATENCY_S
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        inline_fetch_samples=20_000,  # far below a cold year of a few points: a job
        access_ttl_s=1.0,  # a revoked token is refused within a second
        job_poll_s=0.1,
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield Served(url, sim)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("progressive"))


@pytest.fixture
def alone(tmp_path: Path) -> Iterator[Served]:
    """A server of its own, for a test that leaves upstream refusing or failing."""
    yield from _serve(tmp_path)


def _points(served: Served, batch: int) -> dict[str, str]:
    collecting = served.sim.site_by_name[SITE].collecting
    chosen = [p for p in collecting if p.kind in ("zone_temp", "discharge_temp", "co2")]
    return {p.name: p.unit for p in chosen[batch * POINTS : (batch + 1) * POINTS]}


def _open(served: Served, browser: Any, points: dict[str, str]) -> None:
    config = {
        "site": SITE,
        "points": list(points),
        "units": points,
        "view": "line",
        "range": {"preset": "365d"},
    }
    response = httpx.post(
        f"{served.url}/api/charts",
        json={"name": "year", "config": config},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    browser.get(served.url + "/")
    browser.execute_script(f"localStorage.setItem('tsgate.token', '{TOKEN}')")
    browser.get(served.url + response.json()["url"])


def _first_partial(browser: Any) -> list[dict[str, Any]]:
    def drawn_part(d: Any) -> Any:
        return page_state(d) in ("ready", "error") or (
            page_state(d) == "job" and d.execute_script(PARTIALS)
        )

    wait_for(browser, drawn_part, "the first months", timeout_s=JOB_WAIT_S)
    assert page_state(browser) == "job", browser.find_element("id", "message").text
    partials: list[dict[str, Any]] = browser.execute_script(PARTIALS)
    return partials


def _job(served: Served, partial: dict[str, Any]) -> dict[str, Any]:
    got: dict[str, Any] = httpx.get(served.url + partial["url"], headers=AUTH, timeout=10).json()
    return got


def _one_request(served: Served, load: dict[str, Any]) -> list[list[list[float]]]:
    """The chart API's answer to the page's request, as [t, v] pairs per series."""
    answer = httpx.get(
        served.url + load["url"], headers=AUTH | {"Accept": "application/json"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return [
        [[t, v] for t, v in zip(s["t"], s["v"], strict=True) if v is not None]
        for s in answer.json()["series"]
    ]


def test_the_newest_months_are_drawn_before_the_last_arrive(served: Served, browser: Any) -> None:
    _open(served, browser, _points(served, 0))
    partials = _first_partial(browser)
    first = partials[0]
    job = _job(served, first)
    drawn = browser.execute_script(DRAWN)
    assert len(drawn["series"]) == POINTS and all(s["values"] > 0 for s in drawn["series"])
    # the newest parts only: fewer than the job's slices, starting months after the range
    total = job["partsTotal"]  # the newest hours, then the months newest first
    assert 1 <= first["parts"] < total and total >= 12
    assert job["partsDone"] <= total and job["samplesDone"] <= job["samplesTotal"]
    start_ms = job["request"]["start_ms"]
    assert first["startTime"] > time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(start_ms / 1000 + 30 * 86_400)
    )
    assert "parts ready, newest first" in browser.find_element("id", "job-text").text
    screenshot(browser, "chart-page-365d-first-months.png")
    assert _serious(browser) == []

    wait_for(
        browser,
        lambda d: page_state(d) in ("ready", "error"),
        "the whole year",
        timeout_s=JOB_WAIT_S,
    )
    assert page_state(browser) == "ready", browser.find_element("id", "message").text
    partials = browser.execute_script(PARTIALS)
    load = browser.execute_script(DRAWN)["loads"][-1]
    assert load["status"] == 202 and load["job"] == job["jobId"]
    counts = [p["parts"] for p in partials]
    assert counts == sorted(counts) and counts[-1] == total
    assert partials[0]["ms"] < load["ms"]
    # every part joined shows what the job's answer shows, and that is the one-request answer
    assert partials[-1]["points"] == load["points"]
    assert browser.execute_script(DATA) == _one_request(served, load)
    assert _serious(browser) == []


def test_a_changed_query_aborts_the_rest(served: Served, browser: Any) -> None:
    _open(served, browser, _points(served, 1))
    first = _first_partial(browser)[0]
    browser.find_element("css selector", "[data-preset='30d']").click()
    before = len(browser.execute_script(PARTIALS))
    wait_for(
        browser,
        lambda d: page_state(d) in ("ready", "error"),
        "the 30 d chart",
        timeout_s=JOB_WAIT_S,
    )
    assert page_state(browser) == "ready", browser.find_element("id", "message").text
    later = browser.execute_script(PARTIALS)[before:]
    assert all(p["url"] != first["url"] for p in later)  # nothing of the year drawn after
    load = browser.execute_script(DRAWN)["loads"][-1]
    assert browser.execute_script(DATA) == _one_request(served, load)


def test_a_cancelled_job_draws_no_more_months(served: Served, browser: Any) -> None:
    _open(served, browser, _points(served, 2))
    first = _first_partial(browser)[0]
    browser.find_element("id", "job-cancel").click()
    wait_for(browser, lambda d: page_state(d) == "cancelled", "the cancel")
    count = len(browser.execute_script(PARTIALS))
    wait_for(
        browser,
        lambda d: _job(served, first)["status"] in ("cancelled", "completed"),
        "the job's end",
    )
    time.sleep(1.0)  # a part the job made meanwhile is not drawn
    assert len(browser.execute_script(PARTIALS)) == count
    assert _job(served, first)["status"] in ("cancelled", "completed")


def test_upstream_failing_mid_way_keeps_the_months_drawn_and_says_so(
    alone: Served, browser: Any
) -> None:
    served = alone
    _open(served, browser, _points(served, 4))
    _first_partial(browser)
    served.sim.faults.fail_after = 0  # every upstream read from now on answers 500
    try:
        wait_for(
            browser,
            lambda d: page_state(d) in ("error", "ready"),
            "the failure",
            timeout_s=JOB_WAIT_S,
        )
        assert page_state(browser) == "error"
        # the job's failure, or the circuit breaker upstream's failures opened
        assert any(w in browser.find_element("id", "message").text for w in ("failed", "failing"))
        drawn = browser.execute_script(DRAWN)
        assert all(s["values"] > 0 for s in drawn["series"])  # the months that came stay drawn
    finally:
        served.sim.faults.fail_after = None


def test_a_token_revoked_mid_way_ends_the_load_with_its_error(alone: Served, browser: Any) -> None:
    served = alone
    _open(served, browser, _points(served, 3))
    _first_partial(browser)
    assert served.sim.tokens is not None
    served.sim.tokens.pop(TOKEN)  # upstream revokes the token
    try:
        wait_for(
            browser,
            lambda d: page_state(d) in ("error", "ready"),
            "the refusal",
            timeout_s=JOB_WAIT_S,
        )
        assert page_state(browser) == "error"
        assert "token" in browser.find_element("id", "message").text
        assert _serious(browser) == []
    finally:
        served.sim.tokens[TOKEN] = frozenset({SITE})
