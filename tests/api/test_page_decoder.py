"""The chart page's decoder (``decode.js``, run in Node) reads what the server encodes.

The same chart is asked for as columnar MessagePack (int32 time deltas; float32 or
exact-decimal values; each in byte planes) and as JSON pairs; the page's decoding of the
first must give the second's times exactly and its values to float32 precision.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import msgspec
import numpy as np
import pytest

from tests.asgi import api_client
from tests.pagedecoder import SCRIPT, node
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
TOKEN = {"Authorization": "Bearer alice"}
POINTS = (
    "C.Drivers.BacnetNetwork.Ahu1.points.SaTemp",
    "C.Drivers.BacnetNetwork.Ahu1.points.SfPower",
    "ses/demo_campus/8000:33-8033/analogValue/100",
)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, create_simulator(seed=1)) as client:
        yield client


@pytest.mark.parametrize(
    ("query", "values_as"),
    [
        ("", "vdp"),
        ("&max_points=400", "vdp"),
        ("&interval=1h&agg=avg", "vp"),
        ("&interval=15min&agg=stddev", "vp"),
    ],
)
async def test_the_page_decodes_the_servers_msgpack_columns(
    api: httpx.AsyncClient, tmp_path: Path, query: str, values_as: str
) -> None:
    node_path = node()
    search = await api.get(
        "/api/points/search", params={"site": "demo_campus", "limit": "500"}, headers=TOKEN
    )
    known = {p["name"] for p in search.json()["items"]}
    names = [n for n in known if n.endswith(POINTS)][:3]
    assert len(names) >= 2
    url = (
        "/api/timeseries?site=demo_campus&points="
        + ",".join(names)
        + "&start=2025-10-01T00:00:00&end=2025-10-02T00:00:00"
        + query
    )
    packed = await api.get(
        url + "&layout=columnar", headers={**TOKEN, "Accept": "application/x-msgpack"}
    )
    assert packed.status_code == 200 and packed.headers["content-type"] == "application/x-msgpack"
    # both value encodings are exercised: exact decimals (vdp) and float32 (vp)
    assert all(values_as in s for s in msgspec.msgpack.decode(packed.content)["series"])
    pairs = (await api.get(url + "&layout=series", headers=TOKEN)).json()["series"]

    body = tmp_path / "chart.msgpack"
    body.write_bytes(packed.content)
    with anyio.fail_after(60):
        run = await anyio.run_process([node_path, str(SCRIPT), str(body)], check=False)
    assert run.returncode == 0, run.stderr.decode()
    decoded = json.loads(run.stdout)

    assert [s["name"] for s in decoded] == [s["name"] for s in pairs]
    for got, want in zip(decoded, pairs, strict=True):
        assert len(want["data"]) > 0
        assert got["t"] == [t for t, _ in want["data"]]
        expected = np.array([np.nan if v is None else v for _, v in want["data"]], dtype=float)
        values = np.array([np.nan if v is None else v for v in got["v"]], dtype=float)
        np.testing.assert_allclose(values, expected.astype(np.float32), rtol=1e-6)
