"""The differential harness: tsgate through every read path against the simulator's truth.

A :class:`Harness` runs the app in-process (``httpx.ASGITransport``) on a fresh folder,
with the simulator as upstream and one hand-set clock shared by both. Each reader below
asks tsgate through one public path and decodes the answer into per-point ``(t_ms, v)``
arrays; :func:`truth_of` reads the simulator's model directly at the same as-of time.
Every comparison is counted in a :class:`Tally`, and every difference is kept as a
:class:`Divergence` with the query that shows it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import shutil
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import numpy as np

from tests.asgi import sim_client
from tests.clock import Clock
from tsgate.app import create_app
from tsgate.series.chunkstore import object_prefix
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator
from tsgate.wire.ace import PAGE_SIZES, format_time, parse_times

AUTH = {"Authorization": "Bearer t"}
SITE = "elm_school"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday: ISO weeks start there
INTERVALS_MS = {
    "5min": 300_000,
    "15min": 900_000,
    "1h": HOUR_MS,
    "6h": 6 * HOUR_MS,
    "1d": DAY_MS,
    "7d": 7 * DAY_MS,
}
PER_POINT = "/api/points/{name}/timeseries"
AGGS = ("avg", "min", "max", "sum", "count", "stddev", "first", "last")
Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
EMPTY: Arrays = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


# ---- bookkeeping ------------------------------------------------------------------


@dataclass(frozen=True)
class Divergence:
    path: str
    kind: str  # "missing samples", "extra samples", "values", "status 500", …
    query: str
    detail: str
    example: int = 0  # which drawn plan (``Tally.plans``) showed it


@dataclass
class Tally:
    scenario: str
    queries: int = 0
    samples: int = 0
    divergences: list[Divergence] = field(default_factory=list, repr=False)
    plans: list[Any] = field(default_factory=list, repr=False)  # each example's plan, to replay
    damaged: int = 0  # chunk objects a scenario deleted or corrupted

    def diverged(self, path: str, kind: str, query: str, detail: str) -> None:
        example = max(0, len(self.plans) - 1)
        self.divergences.append(Divergence(path, kind, query, detail, example))

    def classes(self) -> Counter[tuple[str, str]]:
        return Counter((d.path, d.kind) for d in self.divergences)

    def report(self) -> str:
        lines = [
            f"{self.scenario}: {self.queries} queries, {self.samples:,} samples compared, "
            f"{len(self.divergences)} divergences"
        ]
        for (path, kind), n in sorted(self.classes().items()):
            first = next(d for d in self.divergences if (d.path, d.kind) == (path, kind))
            lines.append(
                f"  {n:4d} × {path}: {kind} — e.g. {first.query}: {first.detail} "
                f"(plan #{first.example})"
            )
        return "\n".join(lines)


TALLIES: list[Tally] = []


def tally(scenario: str) -> Tally:
    t = Tally(scenario)
    TALLIES.append(t)
    return t


def assert_no_divergence(t: Tally) -> None:
    assert t.queries > 0 and t.samples > 0, "the scenario compared nothing"
    assert not t.divergences, t.report()


# ---- the app under test -------------------------------------------------------------


def diff_settings(folder: Path, **overrides: Any) -> Settings:
    """Embedded settings for a differential run: no background passes, no rate limits,
    charts answered inline (never a job)."""
    return dataclasses.replace(
        Settings(
            database_url=f"sqlite:///{folder}/tsgate.db",
            objects_url=f"file://{folder}/objects",
            rate_limit_per_min=0,
            maintenance_interval_s=0,
            inline_worker=False,
            inline_fetch_samples=0,
            admin_key="admin",
            upstream_token="t",  # re-checks in the maintenance pass read with the server's token
        ),
        **overrides,
    )


class Harness:
    """tsgate on ``folder`` with ``sim`` upstream, both on ``clock``."""

    def __init__(self, sim: Simulator, clock: Clock, settings: Settings, tally: Tally) -> None:
        self.sim = sim
        self.clock = clock
        self.settings = settings
        self.tally = tally
        self.http: httpx.AsyncClient
        self.services: Any = None
        self._stack: contextlib.AsyncExitStack | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, sim: Simulator, clock: Clock, settings: Settings, t: Tally
    ) -> AsyncIterator[Harness]:
        h = cls(sim, clock, settings, t)
        await h.start()
        try:
            yield h
        finally:
            await h.stop()

    async def start(self) -> None:
        stack = contextlib.AsyncExitStack()
        app = create_app(self.settings, upstream=sim_client(self.sim), clock_ms=self.clock)
        state = await stack.enter_async_context(app.router.lifespan_context(app))
        self.services = dict(state or {})["services"]
        if hasattr(self.services.cache, "_clock"):
            # the embedded cache's TTLs (response cache) run on the same clock as the rest
            self.services.cache._clock = lambda: self.clock.ms / 1000

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        self.http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://tsgate", timeout=120)
        )
        self._stack = stack

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self) -> None:
        """A new process on the same folder and database."""
        await self.stop()
        await self.start()

    async def maintenance(self) -> None:
        await self.services.maintenance.run(self.clock.ms)

    def objects_folder(self) -> Path:
        return Path(self.settings.objects_url.removeprefix("file://"))

    def _chunk_files(self) -> tuple[Path, list[Path]]:
        folder = self.objects_folder() / object_prefix(SITE)
        return folder, sorted(p for p in folder.rglob("*") if p.is_file())

    def delete_objects(self) -> int:
        """Delete every cached chunk object of the site (the folder an operator "cleans")."""
        folder, files = self._chunk_files()
        shutil.rmtree(folder, ignore_errors=True)
        self.tally.damaged += len(files)
        return len(files)

    def corrupt_objects(self) -> int:
        """Overwrite every cached chunk object with bytes that decode to nothing valid."""
        _, files = self._chunk_files()
        for i, p in enumerate(files):
            data = p.read_bytes()
            p.write_bytes(data[: len(data) // 2] if i % 2 else b"\x00garbage" + data[8:])
        self.tally.damaged += len(files)
        return len(files)

    def damage_rollup_blobs(self, point: str, level: str = "1h") -> int:
        """Overwrite the point's stored rollup blobs of ``level`` with bytes that decode
        to nothing valid (in the SQLite database)."""
        return self._change_rollups(
            "UPDATE rollups SET blob = ? WHERE point = ? AND level = ?",
            (b"\x01garbage", point, level),
        )

    def delete_rollups(self, point: str, levels: tuple[str, ...]) -> int:
        """Remove the point's rollup rows at ``levels`` (storage lost under the service)."""
        marks = ",".join("?" * len(levels))
        return self._change_rollups(
            f"DELETE FROM rollups WHERE point = ? AND level IN ({marks})", (point, *levels)
        )

    def _change_rollups(self, statement: str, params: tuple[object, ...]) -> int:
        path = Path(self.settings.database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as con:
            return int(con.execute(statement, params).rowcount)

    # ---- requests ------------------------------------------------------------------

    async def get(
        self, path: str, query: str, *, label: str | None = None, **kwargs: Any
    ) -> httpx.Response | None:
        """One request; a 5xx (or a transport failure) is a divergence, None returned."""
        self.tally.queries += 1
        where = label or path
        try:
            r = await self.http.get(path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)
        except Exception as exc:  # the app raised instead of answering
            self.tally.diverged(where, f"500 ({type(exc).__name__})", query, str(exc)[:200])
            return None
        if r.status_code >= 500:
            self.tally.diverged(where, f"status {r.status_code}", query, r.text[:200])
            return None
        return r

    async def post(self, path: str, query: str, **kwargs: Any) -> httpx.Response | None:
        self.tally.queries += 1
        try:
            r = await self.http.post(path, headers=AUTH, **kwargs)
        except Exception as exc:
            self.tally.diverged(path, f"500 ({type(exc).__name__})", query, str(exc)[:200])
            return None
        if r.status_code >= 500:
            self.tally.diverged(path, f"status {r.status_code}", query, r.text[:200])
            return None
        return r


# ---- truth ---------------------------------------------------------------------------


def truth_of(sim: Simulator, names: Iterable[str], start_ms: int, end_ms: int) -> dict[str, Arrays]:
    """What upstream serves now (the simulator's clock) for each point, in ms."""
    out: dict[str, Arrays] = {}
    for name in names:
        t_us, v = sim.truth(name, start_ms, end_ms)
        out[name] = (t_us // 1000, v)
    return out


def bucket_keys(t_ms: np.ndarray[Any, Any], width_ms: int) -> np.ndarray[Any, Any]:
    """Bucket starts: epoch-aligned, and 7-day buckets on ISO weeks (Monday 00:00 UTC)."""
    base = MONDAY_MS if width_ms == 7 * DAY_MS else 0
    keys: np.ndarray[Any, Any] = (t_ms - base) // width_ms * width_ms + base
    return keys


def truth_buckets(arrays: Arrays, width_ms: int, agg: str, start_ms: int) -> Arrays:
    """One value per non-empty bucket of the samples in range, computed with numpy; a
    first bucket clipped by the range start is stamped at the start (docs/api.md)."""
    t, v = arrays
    if not t.size:
        return EMPTY
    keys = bucket_keys(t, width_ms)
    floors, first_idx = np.unique(keys, return_index=True)
    starts = np.maximum(floors, start_ms)
    bounds = np.append(first_idx, t.size)
    parts = [v[a:b] for a, b in itertools.pairwise(bounds.tolist())]
    fn = {
        "avg": np.mean,
        "min": np.min,
        "max": np.max,
        "sum": np.sum,
        "count": len,
        "stddev": np.std,
        "first": lambda p: p[0],
        "last": lambda p: p[-1],
    }[agg]
    return starts, np.array([float(fn(p)) for p in parts], dtype=np.float64)


# ---- comparing -----------------------------------------------------------------------


def _fmt(ms: int) -> str:
    return format_time(int(ms))[:23]


def compare(
    t: Tally, path: str, query: str, want: Arrays, got: Arrays, *, rtol: float = 0.0
) -> bool:
    """Samples (or buckets) equal in time and value; the first difference is recorded."""
    (wt, wv), (gt, gv) = want, got
    t.samples += int(wt.size)
    if wt.size == gt.size and np.array_equal(wt, gt):
        same = np.isclose(gv, wv, rtol=rtol, atol=rtol, equal_nan=True) if rtol else gv == wv
        if bool(np.all(same)):
            return True
        i = int(np.argmin(same))
        t.diverged(
            path, "values", query, f"at {_fmt(wt[i])}: want {float(wv[i])!r}, got {float(gv[i])!r}"
        )
        return False
    missing = np.setdiff1d(wt, gt)
    extra = np.setdiff1d(gt, wt)
    if missing.size:
        t.diverged(
            path,
            "missing samples",
            query,
            f"{missing.size} of {wt.size} missing (got {gt.size}), first {_fmt(missing[0])}, "
            f"last {_fmt(missing[-1])}",
        )
    if extra.size:
        t.diverged(path, "extra samples", query, f"{extra.size} extra, first {_fmt(extra[0])}")
    if not missing.size and not extra.size:
        t.diverged(path, "order or duplicates", query, f"want {wt.size}, got {gt.size}")
    return False


def compare_all(
    t: Tally,
    path: str,
    query: str,
    want: dict[str, Arrays],
    got: dict[str, Arrays] | None,
    *,
    rtol: float = 0.0,
) -> None:
    if got is None:
        return
    for name, arrays in want.items():
        compare(
            t,
            path,
            f"{query} point={name.rsplit('.', 1)[-1]}",
            arrays,
            got.get(name, EMPTY),
            rtol=rtol,
        )
    extra = set(got) - set(want)
    if extra:
        t.diverged(path, "unasked points", query, ", ".join(sorted(extra))[:200])


def _grouped(rows: Sequence[dict[str, str]]) -> dict[str, Arrays]:
    by: dict[str, tuple[list[str], list[str]]] = {}
    for row in rows:
        times, values = by.setdefault(row["name"], ([], []))
        times.append(row["time"])
        values.append(row["value"])
    return {n: (parse_times(ts), np.array(vs, dtype=np.float64)) for n, (ts, vs) in by.items()}


def _rows_ordered(t: Tally, path: str, query: str, rows: Sequence[dict[str, str]]) -> None:
    times = parse_times([r["time"] for r in rows])
    if times.size > 1 and not bool(np.all(times[1:] >= times[:-1])):
        t.diverged(path, "rows out of time order", query, f"{times.size} rows")


def _window(start_ms: int, end_ms: int) -> dict[str, str]:
    return {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}


# ---- the read paths -------------------------------------------------------------------


async def read_paginated(
    h: Harness,
    names: Sequence[str] | None,
    start_ms: int,
    end_ms: int,
    page_size: int,
    *,
    raw: bool = True,
) -> dict[str, Arrays] | None:
    """The drop-in site stream, following ``next_cursor`` to the end."""
    path = f"/api/sites/{SITE}/timeseries/paginated"
    params = {**_window(start_ms, end_ms), "page_size": str(page_size)}
    params["raw_data"] = "true" if raw else "false"
    if names is not None:
        params["point_names"] = ",".join(names)
    query = f"paginated {_fmt(start_ms)}→{_fmt(end_ms)} size={page_size} raw={raw} " + (
        f"{len(names)} points" if names is not None else "all points"
    )
    rows: list[dict[str, str]] = []
    pages = 0
    while True:
        r = await h.get(path, query, params=params)
        if r is None:
            return None
        if r.status_code == 404 and not rows and "cursor" not in params:
            return {}
        if r.status_code != 200:
            h.tally.diverged(path, f"status {r.status_code}", query, r.text[:200])
            return None
        body = r.json()
        page = body["point_samples"]
        if len(page) > page_size:
            h.tally.diverged(path, "page larger than page_size", query, f"{len(page)} rows")
        rows.extend(page)
        pages += 1
        if not body["has_more"]:
            break
        if len(page) == 0 or pages > 20_000:
            h.tally.diverged(path, "cursor loop", query, f"{pages} pages")
            return None
        params["cursor"] = body["next_cursor"]
    _rows_ordered(h.tally, path, query, rows)
    return _grouped(rows)


async def read_per_point(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, Arrays] | None:
    out: dict[str, Arrays] = {}
    for name in names:
        path = f"/api/points/{quote(name, safe='')}/timeseries"
        query = f"per-point {_fmt(start_ms)}→{_fmt(end_ms)} {name.rsplit('.', 1)[-1]}"
        r = await h.get(path, query, label=PER_POINT, params=_window(start_ms, end_ms))
        if r is None:
            return None
        if r.status_code == 404:
            out[name] = EMPTY
            continue
        if r.status_code != 200:
            h.tally.diverged(PER_POINT, f"status {r.status_code}", query, r.text[:200])
            return None
        out.update(_grouped(r.json()["point_samples"]))
    return out


async def read_get_timeseries(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, Arrays] | None:
    path = "/api/points/get_timeseries"
    query = f"get_timeseries {_fmt(start_ms)}→{_fmt(end_ms)} {len(names)} points"
    r = await h.post(path, query, params=_window(start_ms, end_ms), json={"points": list(names)})
    if r is None:
        return None
    if r.status_code == 404:
        return {}
    if r.status_code != 200:
        h.tally.diverged(path, f"status {r.status_code}", query, r.text[:200])
        return None
    return _grouped(r.json()["point_samples"])


async def _chart(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, query: str, **params: str
) -> dict[str, Any] | None:
    msgpack = params.pop("msgpack", "") == "1"
    q = {"site": SITE, "points": ",".join(names), "start": format_time(start_ms)}
    q |= {"end": format_time(end_ms), **params}
    headers = {"Accept": "application/x-msgpack"} if msgpack else {}
    r = await h.get("/api/timeseries", query, params=q, headers=headers)
    if r is None:
        return None
    if r.status_code != 200:
        h.tally.diverged("/api/timeseries", f"status {r.status_code}", query, r.text[:200])
        return None
    body: dict[str, Any] = msgspec.msgpack.decode(r.content) if msgpack else r.json()
    return body


def decode_series(s: dict[str, Any]) -> Arrays:
    """One chart series in any layout (series, columnar JSON, columnar MessagePack)."""
    if "data" in s:
        data = np.array(s["data"], dtype=np.float64).reshape(-1, 2)
        return data[:, 0].astype(np.int64), data[:, 1]
    if "n" not in s:
        return np.array(s["t"], dtype=np.int64), np.array(s["v"], dtype=np.float64)
    n = s["n"]
    if "dtp" in s:
        t = s["t0"] + np.cumsum(_unplane(s["dtp"], "<i4", n).astype(np.int64))
    else:
        t = _unplane(s["tp"], "<f8", n).astype(np.int64)
    if "vdp" in s:
        v = np.cumsum(_unplane(s["vdp"], "<i4", n).astype(np.int64)) / s["vs"]
    else:
        v = _unplane(s["vp"], "<f4", n).astype(np.float64)
    return t, v


def _unplane(planes: bytes, dtype: str, n: int) -> np.ndarray[Any, Any]:
    """A MessagePack column back from its byte planes (byte b of element i at b·n + i)."""
    size = np.dtype(dtype).itemsize
    return np.frombuffer(planes, dtype=np.uint8).reshape(size, n).T.copy().view(dtype).ravel()


async def read_chart_raw(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, layout: str, msgpack: bool
) -> tuple[dict[str, Arrays] | None, bool]:
    """Raw samples from the chart API; also whether values went as float32."""
    query = f"chart raw {_fmt(start_ms)}→{_fmt(end_ms)} layout={layout} msgpack={msgpack}"
    body = await _chart(
        h, names, start_ms, end_ms, query, layout=layout, msgpack="1" if msgpack else ""
    )
    if body is None:
        return None, False
    lossy = any("vp" in s for s in body["series"])
    got = {s["name"]: decode_series(s) for s in body["series"]}
    total = body["metadata"]["totalSamples"]
    if total != sum(a[0].size for a in got.values()):
        h.tally.diverged("/api/timeseries", "totalSamples", query, f"{total} vs series")
    return got, lossy


async def read_chart_interval(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, interval: str, agg: str
) -> tuple[dict[str, Arrays] | None, int | None]:
    query = f"chart {interval}/{agg} {_fmt(start_ms)}→{_fmt(end_ms)}"
    body = await _chart(h, names, start_ms, end_ms, query, interval=interval, agg=agg)
    if body is None:
        return None, None
    got = {s["name"]: decode_series(s) for s in body["series"]}
    return got, int(body["metadata"]["totalSamples"])


async def read_chart_max_points(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, max_points: int
) -> dict[str, Arrays] | None:
    query = f"chart max_points={max_points} {_fmt(start_ms)}→{_fmt(end_ms)}"
    body = await _chart(h, names, start_ms, end_ms, query, max_points=str(max_points))
    if body is None:
        return None
    return {s["name"]: decode_series(s) for s in body["series"]}


async def read_aggregations(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, interval: str
) -> dict[str, dict[str, Arrays]] | None:
    """Per point, per statistic, (bucket starts, values) from /api/aggregations."""
    query = f"aggregations {interval} {_fmt(start_ms)}→{_fmt(end_ms)}"
    q = {"site": SITE, "points": ",".join(names), "start": format_time(start_ms)}
    q |= {"end": format_time(end_ms), "interval": interval}
    r = await h.get("/api/aggregations", query, params=q)
    if r is None:
        return None
    if r.status_code != 200:
        h.tally.diverged("/api/aggregations", f"status {r.status_code}", query, r.text[:200])
        return None
    out: dict[str, dict[str, Arrays]] = {}
    for name in names:
        rows = [a for a in r.json()["aggregations"] if a["name"] == name]
        ts = parse_times([a["timestamp"] for a in rows])
        out[name] = {
            stat: (ts, np.array([a[stat] for a in rows], dtype=np.float64))
            for stat in ("avg", "min", "max", "sum", "count", "stddev")
        }
    return out


# ---- one query on one path, compared with the truth -------------------------------------

PATHS = (
    "paginated",
    "paginated_all",
    "paginated_buckets",
    "per_point",
    "get_timeseries",
    "chart_raw",
    "chart_interval",
    "chart_max_points",
    "aggregations",
)


def _float32(arrays: dict[str, Arrays]) -> dict[str, Arrays]:
    return {n: (t, v.astype(np.float32).astype(np.float64)) for n, (t, v) in arrays.items()}


def _slot_starts(arrays: dict[str, Arrays]) -> dict[str, Arrays]:
    return {n: (t - t % 300_000, v) for n, (t, v) in arrays.items()}


async def check(
    h: Harness,
    path: str,
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
    choose: Any,
) -> None:
    """Ask tsgate ``path`` for ``names`` over ``[start_ms, end_ms)`` and compare with the
    truth at the same clock; ``choose`` (a ``random.Random``) picks the path's options."""
    t = h.tally
    label = f"{path} {_fmt(start_ms)}→{_fmt(end_ms)} ×{len(names)}"
    if path == "paginated_all":
        listed = [
            p.name
            for p in h.sim.site_by_name[SITE].collecting
            if h.sim.faults.visibility().listed(p, h.clock.ms)
        ]
        size = choose.choice([s for s in PAGE_SIZES if s >= 1000])
        got = await read_paginated(h, None, start_ms, end_ms, size)
        compare_all(t, path, f"{label} size={size}", truth_of(h.sim, listed, start_ms, end_ms), got)
    elif path in ("paginated", "paginated_buckets"):
        raw = path == "paginated"
        sizes = [s for s in PAGE_SIZES if s * 400 >= len(names) * (end_ms - start_ms) // 300_000]
        size = choose.choice(sizes or [PAGE_SIZES[-1]])
        got = await read_paginated(h, names, start_ms, end_ms, size, raw=raw)
        want = truth_of(h.sim, names, start_ms, end_ms)
        compare_all(t, path, f"{label} size={size}", want if raw else _slot_starts(want), got)
    elif path == "per_point":
        got = await read_per_point(h, names, start_ms, end_ms)
        compare_all(t, path, label, truth_of(h.sim, names, start_ms, end_ms), got)
    elif path == "get_timeseries":
        got = await read_get_timeseries(h, names, start_ms, end_ms)
        compare_all(t, path, label, truth_of(h.sim, names, start_ms, end_ms), got)
    elif path == "chart_raw":
        layout = choose.choice(["series", "columnar"])
        msgpack = layout == "columnar" and choose.random() < 0.6
        got, lossy = await read_chart_raw(h, names, start_ms, end_ms, layout, msgpack)
        want = truth_of(h.sim, names, start_ms, end_ms)
        compare_all(t, f"{path}/{layout}", label, _float32(want) if lossy else want, got)
    elif path == "chart_interval":
        await _check_interval(h, names, start_ms, end_ms, choose, label)
    elif path == "chart_max_points":
        await _check_max_points(h, names, start_ms, end_ms, choose, label)
    elif path == "aggregations":
        await _check_aggregations(h, names, start_ms, end_ms, choose, label)
    else:
        raise ValueError(path)


async def _check_interval(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, choose: Any, label: str
) -> None:
    interval = choose.choice(list(INTERVALS_MS))
    agg = choose.choice(AGGS)
    got, total = await read_chart_interval(h, names, start_ms, end_ms, interval, agg)
    if got is None:
        return
    truth = truth_of(h.sim, names, start_ms, end_ms)
    want = {n: truth_buckets(a, INTERVALS_MS[interval], agg, start_ms) for n, a in truth.items()}
    rtol = 1e-9 if agg in ("avg", "sum", "stddev") else 0.0
    compare_all(h.tally, f"chart_interval/{interval}", f"{label} agg={agg}", want, got, rtol=rtol)
    in_range = sum(a[0].size for a in truth.values())
    if total != in_range:
        h.tally.diverged(
            f"chart_interval/{interval}", "totalSamples", f"{label} agg={agg}",
            f"{total} reported, {in_range} samples in range",
        )  # fmt: skip


async def _check_max_points(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, choose: Any, label: str
) -> None:
    max_points = choose.choice([4, 10, 100, 500, 2000])
    got = await read_chart_max_points(h, names, start_ms, end_ms, max_points)
    if got is None:
        return
    truth = truth_of(h.sim, names, start_ms, end_ms)
    query = f"{label} max_points={max_points}"
    t = h.tally
    for name, (wt, wv) in truth.items():
        gt, gv = got.get(name, EMPTY)
        t.samples += int(gt.size)
        if gt.size > max_points:
            t.diverged("chart_max_points", "more than max_points", query, f"{gt.size} points")
        if gt.size == 0 or wt.size == 0:
            if gt.size != wt.size:
                kind = "missing samples" if wt.size else "extra samples"
                t.diverged("chart_max_points", kind, query, f"{gt.size} of {wt.size}")
            continue
        # a downsampled line is a subset of the samples that keeps the ends and extremes
        for end, want_t, got_t in (("first", wt[0], gt[0]), ("last", wt[-1], gt[-1])):
            if want_t != got_t:
                t.diverged(
                    "chart_max_points", f"{end} sample lost", query,
                    f"want {_fmt(want_t)}, got {_fmt(got_t)}",
                )  # fmt: skip
        real = np.isin(gt, wt)
        if not bool(np.all(real)):
            i = int(np.argmin(real))
            where = "outside the range" if not start_ms <= gt[i] < end_ms else "no sample's time"
            t.diverged(
                "chart_max_points", f"invented point ({where})", query,
                f"{int(np.count_nonzero(~real))} of {gt.size}, e.g. {_fmt(gt[i])}",
            )  # fmt: skip
        idx = np.searchsorted(wt, gt[real])
        if not bool(np.array_equal(wv[idx], gv[real])):
            t.diverged("chart_max_points", "values", query, "a point's value is not its sample's")
        for extreme, fn in (("min", np.min), ("max", np.max)):
            if gv.size and float(fn(gv)) != float(fn(wv)):
                t.diverged(
                    "chart_max_points", f"global {extreme} lost", query,
                    f"want {float(fn(wv))!r}, got {float(fn(gv))!r}",
                )  # fmt: skip


async def _check_aggregations(
    h: Harness, names: Sequence[str], start_ms: int, end_ms: int, choose: Any, label: str
) -> None:
    interval = choose.choice(["1h", "6h", "1d", "7d"])
    got = await read_aggregations(h, names, start_ms, end_ms, interval)
    if got is None:
        return
    truth = truth_of(h.sim, names, start_ms, end_ms)
    width = INTERVALS_MS[interval]
    for stat in ("count", "avg", "min", "max", "sum", "stddev"):
        want = {n: truth_buckets(a, width, stat, start_ms) for n, a in truth.items()}
        have = {n: got[n][stat] for n in names}
        rtol = 1e-9 if stat in ("avg", "sum", "stddev") else 0.0
        compare_all(h.tally, f"aggregations/{interval}", f"{label} {stat}", want, have, rtol=rtol)
