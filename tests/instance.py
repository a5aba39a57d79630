"""One tsgate and one simulator on an event loop in a thread, for synchronous hypothesis
tests that drive a single long-lived instance whose cache grows from example to example
(later windows overlap earlier ones), compared with the simulator read directly."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from tests.asgi import api_client
from tests.clock import NOW, Clock
from tests.simtruth import COV_KINDS, HELD_KINDS
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import format_time

T = TypeVar("T")
SITE = "elm_school"
AGGS = ("avg", "min", "max", "sum", "count", "stddev", "first", "last")
# the statistic of one bucket's values, the plain numpy way
REDUCE = {
    "avg": np.mean,
    "min": np.min,
    "max": np.max,
    "sum": np.sum,
    "count": lambda v: float(v.size),
    "stddev": np.std,
    "first": lambda v: v[0],
    "last": lambda v: v[-1],
}


class Harness:
    """tsgate (embedded SQLite and local objects under ``root``) in front of the simulator
    (seed 5) at a hand-set clock, on its own event loop."""

    def __init__(self, root: Path, *, now_ms: int = NOW, **settings: Any) -> None:
        self.clock = Clock(now_ms)
        self.sim = create_simulator(seed=5, now_ms=self.clock)
        self.settings = dataclasses.replace(
            Settings(
                database_url=f"sqlite:///{root}/tsgate.db",
                objects_url=f"file://{root}/objects",
                rate_limit_per_min=0,  # thousands of requests on a clock that barely moves
            ),
            **settings,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tokens = itertools.count()
        self._stop = asyncio.Event()
        self._ready: Future[httpx.AsyncClient] = Future()
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        self.api = self._ready.result(timeout=60)

    async def _serve(self) -> None:
        # enter and leave the app's lifespan in one task, as its task groups require
        async with (
            api_client(self.settings, self.sim, clock_ms=self.clock) as api,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.sim), base_url="http://simulator"
            ) as direct,
        ):
            self.direct = direct
            self._ready.set_result(api)
            await self._stop.wait()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._serving.result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def names(self, count: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:count]]

    def token(self) -> dict[str, str]:
        """A new caller each time: its own response-cache scope, so answers are recomputed."""
        return {"Authorization": f"Bearer caller-{next(self.tokens)}"}

    async def call(self, path: str, params: dict[str, str]) -> httpx.Response:
        """One request as a new caller. Time moves on between requests, as it does in
        production: a rollup rewritten at the same millisecond as its cached decoded copy
        would look unchanged."""
        self.clock.ms += 1
        return await self.api.get(path, params=params, headers=self.token())

    async def read_polled_history(self, names: list[str], start: int, end: int) -> None:
        """Chart the polled on/off points among ``names`` over ``[start, end)`` once: such a
        point is judged by the cadence its stored periods show (before any is stored, by
        the heartbeat rule), as a point's is once charted, so every range of theirs then
        has periods to judge it."""
        site = self.sim.site_by_name[SITE]
        polled = [n for n in names if site.by_name[n].kind in HELD_KINDS - COV_KINDS]
        if polled:
            query = {"site": SITE, "points": ",".join(polled)}
            query |= {"start": format_time(start), "end": format_time(end)}
            r = await self.call("/api/timeseries", query)
            assert r.status_code == 200, r.text

    async def get(
        self, path: str, names: list[str], start: int, end: int, *, site: str = SITE, **params: str
    ) -> Any:
        """The JSON answer (a 200) of ``path`` for ``names`` of ``site`` over ``[start, end)``."""
        query = {
            "site": site,
            "points": ",".join(names),
            "start": format_time(start),
            "end": format_time(end),
            **params,
        }
        r = await self.call(path, query)
        assert r.status_code == 200, r.text
        return r.json()

    async def truth(self, name: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The point's samples in ``[start, end)``, straight from the simulator."""
        r = await self.direct.get(
            f"/api/points/{name.replace('/', '%2F')}/timeseries",
            params={"start_time": format_time(start), "end_time": format_time(end)},
            headers={"Authorization": "Bearer truth"},
        )
        if r.status_code == 404:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        assert r.status_code == 200, r.text
        rows = r.json()["point_samples"]
        stamps = np.array([row["time"] for row in rows], dtype="datetime64[us]")
        t = stamps.astype("datetime64[ms]").astype(np.int64)
        v = np.array([float(row["value"]) for row in rows], dtype=np.float64)
        assert bool(np.all((t >= start) & (t < end)))
        return t, v
