"""A year of 50 points on the chart page, through a real query job (issue 6).

The real tsgate app serves the page over HTTP with the simulated campus upstream and a
small inline-fetch budget. A saved chart of 50 collecting points of ``demo_campus`` over
the 365 d preset is opened by its URL: the cold request (about 5.2 M samples to fetch)
answers ``202``, the page shows the job's progress bar while the worker inside the server
fetches the year slice by slice, then draws the job's result.

Fetching a cold year of 50 points from the in-process simulator is CPU-bound (about 90 s
on two cores, longer when they are shared), so the job gets up to 150 s and the test is
marked slow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from tests.asgi import live_server, sim_client
from tests.browser import DRAWN, page_state, screenshot, wait_for
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.slow

SITE = "demo_campus"
POINTS = 50
DAY_MS = 86_400_000
SWEEPS_PER_YEAR = 365 * 288  # one sample per point per 5-minute sweep
INLINE_FETCH_SAMPLES = 100_000  # far below a cold year of 50 points: it must be a job
JOB_WAIT_S = 150.0
SAMPLE_EVERY_S = 0.25

PROGRESS = """
return {
  state: document.body.dataset.state,
  shown: !document.getElementById('job').hidden,
  progress: document.getElementById('job-progress').value,
  text: document.getElementById('job-text').textContent,
};
"""


class Served(NamedTuple):
    url: str
    sim: Simulator


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("real-job")
    sim = create_simulator(seed=1, tokens={"demo": (SITE,)})
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",  # like `tsgate serve --demo`: the page needs no token
        inline_fetch_samples=INLINE_FETCH_SAMPLES,
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield Served(url, sim)


def _save_chart(base_url: str, points: dict[str, str]) -> str:
    """Save a 365 d line chart of ``points`` (name -> unit); returns its page URL."""
    config = {
        "site": SITE,
        "points": list(points),
        "units": points,
        "view": "line",
        "range": {"preset": "365d"},
    }
    body = {"name": f"{SITE}: {len(points)} points, 365 d", "config": config}
    response = httpx.post(f"{base_url}/api/charts", json=body, timeout=10)
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    assert url.startswith("/?chart=")
    return base_url + url


def _follow_the_job(driver: Any) -> list[dict[str, Any]]:
    """What the page showed every ``SAMPLE_EVERY_S`` until the job's result is drawn."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + JOB_WAIT_S
    while True:
        now = driver.execute_script(PROGRESS)
        if now["state"] == "job":
            if not any(s["progress"] > 0 for s in seen) and now["progress"] > 0:
                screenshot(driver, "chart-page-365d-50-points-job-progress.png")
            seen.append(now)
        if now["state"] not in ("loading", "job"):
            return seen
        if time.monotonic() > deadline:
            last = seen[-1] if seen else now
            pytest.fail(f"the job did not finish within {JOB_WAIT_S:.0f} s; page showed {last}")
        time.sleep(SAMPLE_EVERY_S)


def test_a_cold_year_of_50_points_shows_job_progress_then_draws_the_chart(
    served: Served, browser: Any
) -> None:
    collecting = served.sim.site_by_name[SITE].collecting[:POINTS]
    points = {p.name: p.unit for p in collecting}
    assert len(points) == POINTS
    page_url = _save_chart(served.url, points)

    browser.get(page_url)
    wait_for(browser, lambda d: page_state(d) in ("job", "ready", "error"), "the 202")
    assert page_state(browser) == "job", browser.find_element("id", "message").text
    assert browser.find_element("id", "job").is_displayed()
    assert browser.find_element("id", "job-progress").is_displayed()

    seen = _follow_the_job(browser)
    assert page_state(browser) == "ready", browser.find_element("id", "message").text

    # the progress bar was shown for the job, and what it showed only ever rose
    assert seen and all(s["shown"] for s in seen)
    job_id = seen[0]["text"].split(":")[0].removeprefix("Job ")
    assert all(s["text"].startswith(f"Job {job_id}: ") for s in seen)
    estimate = int(seen[0]["text"].rsplit("about ", 1)[1].split()[0].replace(",", ""))
    assert estimate > 0.9 * POINTS * SWEEPS_PER_YEAR > INLINE_FETCH_SAMPLES
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress), progress
    assert len(set(progress)) >= 3, progress
    assert any(0 < p < 100 for p in progress), progress
    assert any("running" in s["text"] for s in seen)

    # then the chart: 50 line series, each with points and values, a y-axis per unit
    drawn = browser.execute_script(DRAWN)
    series = drawn["series"]
    assert len(series) == POINTS
    assert all(s["type"] == "line" and s["points"] > 100 and s["values"] > 0 for s in series)
    assert len(drawn["yAxes"]) == len(set(points.values()))
    assert not browser.find_element("id", "job").is_displayed()
    assert not browser.find_element("id", "chart-overlay").is_displayed()

    # the page's record of the load: it came from that job
    load = drawn["loads"][-1]
    assert load["status"] == 202 and load["job"] == job_id
    assert load["cacheStatus"] == "JOB" and load["cacheSource"] == "JOB"
    assert "layout=columnar" in load["url"] and "max_points=" in load["url"]
    assert load["samples"] > 0.9 * POINTS * SWEEPS_PER_YEAR  # every sample behind the lines
    # the page adds a null to break each line across a gap: the answer's points are the
    # drawn values
    assert load["points"] == sum(s["values"] for s in series) < load["samples"]
    assert f"job {job_id}" in browser.find_element("id", "load-info").text
    path = screenshot(browser, "chart-page-365d-50-points-job.png")
    assert path.stat().st_size > 10_000

    # the server's side: one completed query job for these points, fed from upstream
    job = httpx.get(f"{served.url}/api/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "completed" and job["kind"] == "query" and job["progress"] == 100
    assert job["request"]["points"] == list(points)
    assert job["request"]["end_ms"] - job["request"]["start_ms"] == 365 * DAY_MS
    assert job["samplesDone"] > 0.9 * POINTS * SWEEPS_PER_YEAR
    assert served.sim.stats.samples >= job["samplesDone"]

    # and the job warmed the cache: the same chart opened again is drawn without a job
    browser.get(page_url)
    wait_for(browser, lambda d: page_state(d) in ("ready", "error"), "the warm chart")
    assert page_state(browser) == "ready", browser.find_element("id", "message").text
    again = browser.execute_script(DRAWN)
    assert again["loads"][-1]["status"] == 200 and again["loads"][-1]["job"] is None
    assert len(again["series"]) == POINTS
