"""Charts of points read without a site (the unknown site ``_``): their series are
described (kind, mode) and ``agg=timein:`` works, the token's access checked per point;
a token that may read one point but not another gets the one and is refused the other."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.clock import NOW
from tests.instance import Harness
from tests.simtruth import sim_gap_ms, walk_gaps
from tsgate.core.model import MS_PER_HOUR
from tsgate.upstream.campus import SimPoint
from tsgate.wire.ace import format_time

UNKNOWN = "_"
READER = "reads-one-site"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("unknown-site"))
    try:
        yield h
    finally:
        h.close()


def _point(h: Harness, site: str, kind: str) -> SimPoint:
    return next(p for p in h.sim.site_by_name[site].collecting if p.kind == kind)


def _params(names: list[str], **extra: str) -> dict[str, str]:
    return {
        "site": UNKNOWN,
        "points": ",".join(names),
        "start": format_time(NOW - 6 * MS_PER_HOUR),
        "end": format_time(NOW - MS_PER_HOUR),
        **extra,
    }


def _allow(h: Harness, token: str, *sites: str) -> None:
    # every caller-N token reads every site, as before; this one only the sites named
    h.sim.tokens = None if not sites else {token: frozenset(sites)}


def test_an_unknown_site_chart_is_described(harness: Harness) -> None:
    h = harness
    site = "rhine_lab"
    mode, compressor = _point(h, site, "ahu_mode"), _point(h, site, "compressor")

    async def check() -> None:
        r = await h.call("/api/timeseries", _params([mode.name, compressor.name]))
        assert r.status_code == 200, r.text
        kinds = {s["name"]: (s["kind"], s["mode"]) for s in r.json()["series"]}
        assert kinds == {mode.name: ("multistate", "cov"), compressor.name: ("binary", "cov")}
        # their gaps by the rule of points reporting on change, as on their own site
        span = (NOW - 6 * MS_PER_HOUR, NOW - MS_PER_HOUR)
        for p in (mode, compressor):
            t_us, v = h.sim.truth(p.name, *span)
            t = (t_us // 1000)[~np.isnan(v)].tolist()
            assert r.json()["metadata"]["gaps"].get(p.name, []) == [
                list(g) for g in walk_gaps(t, span, sim_gap_ms(p.kind))
            ]
        # the hours in mode 1 (off: NOW is a Saturday), as the point's own site answers
        timein = await h.call(
            "/api/timeseries", _params([mode.name], interval="1h", agg="timein:1")
        )
        assert timein.status_code == 200, timein.text
        known = await h.call(
            "/api/timeseries",
            {**_params([mode.name], interval="1h", agg="timein:1"), "site": site},
        )
        assert known.status_code == 200, known.text
        (series,) = timein.json()["series"]
        assert series["data"] == known.json()["series"][0]["data"]
        assert len(series["data"]) == 5 and all(0.9 < v <= 1.0 for _, v in series["data"])
        # an analog point is still refused timein, by name
        analog = _point(h, site, "zone_temp_cov")
        refused = await h.call(
            "/api/timeseries", _params([analog.name], interval="1h", agg="timein:2")
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["param"] == "agg"

    h.run(check())


def test_a_token_reading_one_point_but_not_another(harness: Harness) -> None:
    h = harness
    mine = _point(h, "rhine_lab", "ahu_mode")
    theirs = _point(h, "pune_clinic", "ahu_mode")
    headers = {"Authorization": f"Bearer {READER}"}

    async def check() -> None:
        _allow(h, READER, "rhine_lab")
        try:
            ok = await h.api.get(
                "/api/timeseries",
                params=_params([mine.name], interval="1h", agg="timein:2"),
                headers=headers,
            )
            assert ok.status_code == 200, ok.text
            for names in ([theirs.name], [mine.name, theirs.name]):
                for extra in ({}, {"interval": "1h", "agg": "timein:2"}):
                    r = await h.api.get(
                        "/api/timeseries", params=_params(names, **extra), headers=headers
                    )
                    assert r.status_code in (403, 404), r.text
                    assert '"data"' not in r.text
        finally:
            _allow(h, READER)

    h.run(check())
