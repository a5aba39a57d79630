"""One caller asking the same range by UTC and local days, and with a comparison: each
answer is its own, never another's kept in the response cache; nor one kept under an
earlier revision of the wire encodings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clock import NOW
from tests.instance import SITE, Harness
from tsgate.api import responses
from tsgate.cache.memory import MemoryCache
from tsgate.core.model import MS_PER_DAY
from tsgate.series.chart import ChartQuery
from tsgate.wire import chart as chart_wire
from tsgate.wire.ace import format_time

AUTH = {"Authorization": "Bearer one-caller"}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("keys"))
    try:
        yield h
    finally:
        h.close()


def test_zone_and_comparison_are_part_of_the_cached_answer(harness: Harness) -> None:
    h = harness
    names = h.names(2)
    base = {
        "site": SITE,
        "points": ",".join(names),
        "start": format_time(NOW - 10 * MS_PER_DAY),
        "end": format_time(NOW - 2 * MS_PER_DAY),
        "interval": "1d",
    }

    async def ask(**extra: str) -> dict[str, object]:
        r = await h.api.get("/api/timeseries", params={**base, **extra}, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def check() -> None:
        for _ in range(2):  # the second round is answered from the response cache
            utc, local = await ask(), await ask(tz="site")
            compared = await ask(compare="-7d")
            assert utc["metadata"]["timeZone"] == "UTC"  # type: ignore[index]
            assert local["metadata"]["timeZone"] == "America/New_York"  # type: ignore[index]
            utc_times = [p[0] for p in utc["series"][0]["data"]]  # type: ignore[index]
            local_times = [p[0] for p in local["series"][0]["data"]]  # type: ignore[index]
            assert utc_times[1] % MS_PER_DAY == 0 and local_times[1] % MS_PER_DAY != 0
            series: list[dict[str, object]] = compared["series"]  # type: ignore[assignment]
            offsets = [s.get("offsetMs") for s in series]
            assert offsets == [None, None, -7 * MS_PER_DAY, -7 * MS_PER_DAY]
            assert series[:2] == utc["series"]  # type: ignore[index]

    h.run(check())


@pytest.mark.anyio
async def test_an_answer_kept_under_earlier_wire_encodings_is_not_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = MemoryCache()
    query = ChartQuery(SITE, ("p",), NOW - MS_PER_DAY, NOW)
    key = responses.ResponseKey("scope", query, "columnar", True, "zstd")
    entry = responses.CachedResponse(b"\x81", "application/x-msgpack", {})
    assert await responses.store(cache, key, entry, ttl_s=60)
    assert await responses.load(cache, key) == entry
    monkeypatch.setattr(chart_wire, "REVISION", chart_wire.REVISION - 1)
    assert await responses.load(cache, key) is None
