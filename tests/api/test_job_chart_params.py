"""``POST /api/jobs`` takes every parameter of the chart API (``tz``, ``compare`` and
the aggregate's default interval included), refuses what it refuses with the same
problem, and answers what it answers: random local-day, week and M4 charts with and
without a comparison, the job's result equal to ``GET /api/timeseries``'s answer and
both equal to the simulator's samples grouped by their local date."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.api.test_chart_zones import reference
from tests.instance import AGGS, SITE, Harness
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.wire.ace import format_time, parse_time

NOW = parse_time("now", "2026-12-01T12:00:00")
ZONES = ("UTC", "site", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
COMPARES = {None: 0, "-7d": -7 * MS_PER_DAY, "-24h": -MS_PER_DAY, "-90m": -90 * MS_PER_MINUTE}
TERMINAL = {"completed", "failed", "dead", "cancelled"}
SITE_ZONE = "Asia/Kolkata"  # elm_school's zone, as configured below
DIFF = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(
        tmp_path_factory.mktemp("jobparams"),
        now_ms=NOW,
        site_zones=(f"{SITE}={SITE_ZONE}",),
        job_poll_s=0.02,
        max_inline_samples=100_000,
        inline_fetch_samples=0,  # every chart is answered inline: the job is the other side
    )
    try:
        yield h
    finally:
        h.close()


def body_of(names: list[str], start: int, end: int, **params: Any) -> dict[str, Any]:
    return {
        "kind": "query",
        "site": SITE,
        "points": names,
        "start": format_time(start),
        "end": format_time(end),
        **{k: v for k, v in params.items() if v is not None},
    }


async def job_answer(h: Harness, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's status when it ended, and its result."""
    token = h.token()
    h.clock.ms += 1
    posted = await h.api.post("/api/jobs", json=body, headers=token)
    assert posted.status_code in (200, 202), posted.text
    url = posted.headers["location"]
    for _ in range(3000):
        status: dict[str, Any] = (await h.api.get(url, headers=token)).json()
        if status["status"] in TERMINAL:
            break
        await asyncio.sleep(0.01)
    assert status["status"] == "completed", status
    result = await h.api.get(f"{url}/result", headers=token)
    assert result.status_code == 200, result.text
    return status, result.json()


def inline_params(body: dict[str, Any]) -> dict[str, str]:
    skip = {"kind", "points"}
    return {k: str(v) for k, v in body.items() if k not in skip} | {
        "points": ",".join(body["points"])
    }


def same_answer(job: dict[str, Any], inline: dict[str, Any]) -> None:
    # the job's answer was computed a moment later: only what is still provisional may
    # have moved on to final
    for body in (job, inline):
        body["metadata"].pop("provisional", None)
    assert job == inline


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int]:
    align = draw(st.sampled_from([MS_PER_HOUR, MS_PER_MINUTE, 1]))
    back = draw(st.integers(2 * MS_PER_DAY // align, 60 * MS_PER_DAY // align)) * align
    length = draw(st.integers(6 * MS_PER_HOUR // align, 40 * MS_PER_DAY // align)) * align
    start = NOW - back
    return start, min(NOW, start + length)


@DIFF
@given(
    window=windows(),
    zone=st.sampled_from(ZONES),
    interval=st.sampled_from(["1d", "7d", "1h", None]),
    agg=st.sampled_from(AGGS),
    compare=st.sampled_from(sorted(COMPARES, key=str)),
    layout=st.sampled_from([None, "columnar"]),
)
@example(window=(NOW - 40 * MS_PER_DAY, NOW), zone="site", interval="1d", agg="max",
         compare="-7d", layout=None)  # fmt: skip
@example(window=(NOW - 9 * MS_PER_DAY, NOW - MS_PER_DAY), zone="Asia/Kathmandu", interval=None,
         agg="avg", compare="-90m", layout="columnar")  # fmt: skip
def test_a_job_answers_as_the_chart_api_and_the_truth(
    harness: Harness,
    window: tuple[int, int],
    zone: str,
    interval: str | None,
    agg: str,
    compare: str | None,
    layout: str | None,
) -> None:
    h, names = harness, harness.names(2)
    start, end = window
    body = body_of(
        names, start, end, interval=interval, agg=agg, tz=zone, compare=compare, layout=layout
    )

    async def check() -> None:
        status, job = await job_answer(h, body)
        r = await h.call("/api/timeseries", inline_params(body))
        assert r.status_code == 200, r.text
        inline = r.json()
        local = SITE_ZONE if zone == "site" else zone
        assert job["metadata"]["timeZone"] == local
        assert status["request"].get("tz") == (None if local == "UTC" else local)
        same_answer(job, inline)
        if interval not in ("1d", "7d"):
            return  # hours and automatic buckets: the chart API's own tests hold their truth
        offset = COMPARES[compare]
        series = job["series"]
        for i, name in enumerate(names):
            for s, shift in (
                (series[i], 0),
                *(((series[len(names) + i], offset),) if offset else ()),
            ):
                assert s["name"] == name and s.get("offsetMs", 0) == shift
                t, v = await h.truth(name, start + shift, end + shift)
                stamps, values = reference(t, v, start + shift, local, interval, agg)
                if layout == "columnar":
                    got_t, got_v = np.array(s["t"], dtype=np.int64), np.array(s["v"], dtype=float)
                else:
                    data = np.array(s["data"], dtype=np.float64).reshape(-1, 2)
                    got_t, got_v = data[:, 0].astype(np.int64), data[:, 1]
                assert (got_t + shift).tolist() == stamps
                np.testing.assert_allclose(got_v, values, rtol=1e-9, atol=1e-9)

    h.run(check())


async def _problem(h: Harness, path: str, **kwargs: Any) -> tuple[int, str, str, str]:
    h.clock.ms += 1
    if path == "/api/jobs":
        r = await h.api.post(path, headers=h.token(), **kwargs)
    else:
        r = await h.api.get(path, headers=h.token(), **kwargs)
    problem = r.json()
    return r.status_code, r.headers["content-type"], problem.get("param", ""), problem["detail"]


@pytest.mark.parametrize(
    "bad",
    [
        {"tz": "Mars/Olympus"},
        {"tz": "site/../x"},
        {"compare": "+7d"},
        {"compare": "-0d"},
        {"compare": "-7y"},
        {"compare": "-999999d"},
        {"agg": "median"},
        {"agg": "timein:x"},
        {"interval": "2d"},
        {"interval": "5min", "agg": "avg", "tz": "Asia/Kathmandu"},  # raw reads of a year
        {"agg": "timein:1"},  # of analog points
    ],
)
def test_bad_chart_parameters_are_refused_as_the_chart_api_refuses_them(
    harness: Harness, bad: dict[str, str]
) -> None:
    h, names = harness, harness.names(2)
    start, end = NOW - 300 * MS_PER_DAY, NOW
    body = body_of(names, start, end, **bad)

    async def check() -> None:
        job = await _problem(h, "/api/jobs", json=body)
        inline = await _problem(h, "/api/timeseries", params=inline_params(body))
        assert job == inline
        assert job[0] in (400, 413) and job[1] == "application/problem+json"

    h.run(check())


@pytest.mark.parametrize(
    "bad", [{"tz": 5}, {"compare": ["-7d"]}, {"agg": 3}, {"tz": "UTC", "kind": "export"}]
)
def test_parameters_of_the_wrong_type_or_kind_are_a_400_naming_them(
    harness: Harness, bad: dict[str, Any]
) -> None:
    h, names = harness, harness.names(1)
    body = body_of(names, NOW - MS_PER_DAY, NOW) | bad

    async def check() -> None:
        status, media, param, _ = await _problem(h, "/api/jobs", json=body)
        assert (status, media) == (400, "application/problem+json")
        assert param == next(k for k in bad if k != "kind")

    h.run(check())
