"""The chart page's side of background jobs, against a stand-in for the jobs API.

When ``/api/timeseries`` answers ``202 Accepted`` the page follows the job (server-sent
events read with fetch, or polling), shows a progress bar, can cancel, and draws the
result. The stand-in speaks the jobs contract (DESIGN §3) so this runs before the real
jobs API is wired to the chart route; the page files are tsgate's own. The same path
against the real app and a real query job is ``test_chart_page_real_job.py`` (slow).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.asgi import live_server
from tests.browser import wait_for
from tsgate import ui

JOB = "job-1"
MSGPACK = "application/x-msgpack"
POINTS = [{"name": "site/a", "unit": "°F", "tags": ["temp"], "collect_enabled": True}]
HOUR_MS = 3_600_000


@dataclass
class JobsStandIn:
    sse: bool = True
    release: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    chart_requests: list[str] = field(default_factory=list)

    def job(self, status: str, progress: float) -> dict[str, Any]:
        body: dict[str, Any] = {"jobId": JOB, "status": status, "progress": progress}
        body["statusUrl"] = f"/api/jobs/{JOB}"
        if status == "completed":
            body["resultUrl"] = f"/api/jobs/{JOB}/result"
        return body

    def current(self) -> dict[str, Any]:
        if self.cancelled.is_set():
            return self.job("cancelled", 40)
        return self.job("completed", 100) if self.release.is_set() else self.job("running", 40)

    async def timeseries(self, request: Request) -> Response:
        self.chart_requests.append(str(request.url))
        accepted = {"jobId": JOB, "status": "queued", "statusUrl": f"/api/jobs/{JOB}"}
        accepted["estimatedSamples"] = 5_256_000
        headers = {"Location": f"/api/jobs/{JOB}"}
        if MSGPACK in request.headers.get("accept", ""):  # negotiated, as tsgate does
            return Response(msgspec.msgpack.encode(accepted), 202, headers, media_type=MSGPACK)
        return JSONResponse(accepted, 202, headers=headers)

    async def events(self, request: Request) -> Response:
        if not self.sse:
            return JSONResponse({"title": "Not found", "status": 404}, 404)
        return StreamingResponse(self._stream(), media_type="text/event-stream")

    async def _stream(self) -> AsyncIterator[bytes]:
        last = None
        while True:
            job = self.current()
            if job != last:
                yield b"event: progress\ndata: " + msgspec.json.encode(job) + b"\n\n"
                last = job
            if job["status"] != "running":
                return
            await asyncio.sleep(0.05)

    async def show(self, request: Request) -> Response:
        return JSONResponse(self.current())

    async def cancel(self, request: Request) -> Response:
        self.cancelled.set()
        return JSONResponse(self.current())

    async def result(self, request: Request) -> Response:
        start = 1_700_000_000_000
        data = [[start + i * HOUR_MS, 60.0 + (i % 24)] for i in range(24 * 365)]
        meta = {"siteId": "site", "pointNames": ["site/a"], "totalSamples": 105_120}
        return JSONResponse({"metadata": meta, "series": [{"name": "site/a", "data": data}]})

    def app(self) -> Starlette:
        async def sites(request: Request) -> Response:
            return JSONResponse({"page": 1, "pages": 1, "total": 1, "items": [{"name": "site"}]})

        async def search(request: Request) -> Response:
            return JSONResponse({"site": "site", "q": "", "tags": [], "items": POINTS})

        async def charts(request: Request) -> Response:
            return JSONResponse({"items": [], "total": 0})

        return Starlette(
            routes=[
                Route("/api/sites", sites),
                Route("/api/points/search", search),
                Route("/api/charts", charts),
                Route("/api/timeseries", self.timeseries),
                Route(f"/api/jobs/{JOB}", self.show, methods=["GET"]),
                Route(f"/api/jobs/{JOB}", self.cancel, methods=["DELETE"]),
                Route(f"/api/jobs/{JOB}/events", self.events),
                Route(f"/api/jobs/{JOB}/result", self.result),
                *ui.routes(),
            ]
        )


def _start_a_year_long_chart(driver: Any, base_url: str) -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(base_url + "/")
    wait_for(driver, lambda d: d.find_elements("css selector", "#site option[value=site]"), "sites")
    Select(driver.find_element("id", "site")).select_by_value("site")
    row = wait_for(
        driver,
        lambda d: d.find_elements("css selector", '#results li[data-name="site/a"]'),
        "a point",
    )
    row[0].click()
    driver.find_element("css selector", '#presets [data-preset="365d"]').click()
    wait_for(
        driver,
        lambda d: d.execute_script("return document.getElementById('job-progress').value") == 40,
        "progress 40 %",
    )
    assert driver.find_element("id", "job").is_displayed()
    assert "running 40%" in driver.find_element("id", "job-text").text


@pytest.mark.parametrize("sse", [True, False], ids=["events", "polling"])
def test_a_job_shows_progress_then_draws_the_result(browser: Any, sse: bool) -> None:
    stand_in = JobsStandIn(sse=sse)
    with live_server(stand_in.app()) as base_url:
        _start_a_year_long_chart(browser, base_url)
        stand_in.release.set()
        wait_for(
            browser,
            lambda d: d.execute_script("return document.body.dataset.state") == "ready",
            "the result",
        )
        drawn = browser.execute_script(
            "const o = echarts.getInstanceByDom(document.getElementById('chart')).getOption();"
            "return {points: o.series[0].data.length, load: window.__tsgateLoads.at(-1)};"
        )
    assert drawn["points"] == 24 * 365
    assert drawn["load"]["job"] == JOB and drawn["load"]["samples"] == 105_120
    assert not browser.find_element("id", "job").is_displayed()
    assert "job job-1" in browser.find_element("id", "load-info").text


def test_a_job_can_be_cancelled(browser: Any) -> None:
    stand_in = JobsStandIn()
    with live_server(stand_in.app()) as base_url:
        _start_a_year_long_chart(browser, base_url)
        browser.find_element("id", "job-cancel").click()
        wait_for(
            browser,
            lambda d: d.execute_script("return document.body.dataset.state") == "cancelled",
            "the cancel",
        )
        assert stand_in.cancelled.wait(5)
    assert not browser.find_element("id", "job").is_displayed()
    assert browser.find_element("id", "chart-overlay").text == "Job cancelled."
