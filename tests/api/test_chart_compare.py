"""``compare=-7d``: each series again over the earlier range, shifted onto this one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.instance import SITE, Harness
from tsgate.core.model import MS_PER_DAY, MS_PER_MINUTE
from tsgate.wire.ace import format_time, parse_time

WEEK = 7 * MS_PER_DAY
START = parse_time("t", "2025-10-13T05:17:00")  # a Monday, unaligned
END = START + 3 * MS_PER_DAY


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("compare"))
    try:
        yield h
    finally:
        h.close()


def test_raw_comparison_is_last_weeks_samples_shifted_a_week(harness: Harness) -> None:
    h, names = harness, harness.names(2)

    async def check() -> None:
        body = await h.get("/api/timeseries", names, START, END, compare="-7d", layout="columnar")
        now, earlier = body["series"][: len(names)], body["series"][len(names) :]
        assert [s["name"] for s in earlier] == names and all(
            s["offsetMs"] == -WEEK for s in earlier
        )
        assert all("offsetMs" not in s for s in now)
        total = 0
        for name, this, last in zip(names, now, earlier, strict=True):
            t, v = await h.truth(name, START, END)
            assert this["t"] == t.tolist() and this["v"] == v.tolist()
            t_last, v_last = await h.truth(name, START - WEEK, END - WEEK)
            assert last["t"] == (t_last + WEEK).tolist() and last["v"] == v_last.tolist()
            total += t_last.size
        assert body["metadata"]["compare"] == {"offsetMs": -WEEK, "totalSamples": total}

    h.run(check())


@pytest.mark.parametrize(("compare", "offset"), [("-24h", -MS_PER_DAY), ("-1w", -WEEK)])
def test_hourly_comparison_equals_the_earlier_query_shifted(
    harness: Harness, compare: str, offset: int
) -> None:
    h, names = harness, harness.names(1)

    async def check() -> None:
        body = await h.get("/api/timeseries", names, START, END, interval="1h", compare=compare)
        alone = await h.get("/api/timeseries", names, START + offset, END + offset, interval="1h")
        shifted = [[t - offset, v] for t, v in alone["series"][0]["data"]]
        assert body["series"][1]["data"] == shifted
        assert body["series"][0]["data"][0][0] == START  # the clipped first hour
        assert body["metadata"]["compare"]["totalSamples"] == alone["metadata"]["totalSamples"]

    h.run(check())


def test_m4_comparison_draws_real_samples_of_the_earlier_range(harness: Harness) -> None:
    h, names = harness, harness.names(1)

    async def check() -> None:
        body = await h.get("/api/timeseries", names, START, END, max_points="100", compare="-90m")
        t, v = await h.truth(names[0], START - 90 * MS_PER_MINUTE, END - 90 * MS_PER_MINUTE)
        data = np.array(body["series"][1]["data"])
        back = data[:, 0].astype(np.int64) - 90 * MS_PER_MINUTE
        at = np.searchsorted(t, back)
        assert t[at].tolist() == back.tolist() and v[at].tolist() == data[:, 1].tolist()
        assert len(data) <= 100

    h.run(check())


@pytest.mark.parametrize("compare", ["7d", "-0d", "-7x", "-1.5d", "last week", "-9999999d"])
def test_bad_comparisons_are_a_400_naming_compare(harness: Harness, compare: str) -> None:
    query = {
        "site": SITE,
        "points": harness.names(1)[0],
        "start": format_time(START),
        "end": format_time(END),
        "compare": compare,
    }

    async def check() -> httpx.Response:
        return await harness.call("/api/timeseries", query)

    r = harness.run(check())
    assert r.status_code == 400 and r.json()["param"] == "compare"
    assert r.headers["content-type"] == "application/problem+json"
