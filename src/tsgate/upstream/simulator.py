"""An ASGI simulator of the ACE (FlightDeck) API, deterministic from a seed.

It speaks the real contract (DESIGN §1–§2): paginated envelopes, the ``page_size``
enum, base64-JSON cursors, ``raw_data`` 5-minute buckets, per-point reads with
``%2F``-encoded names, string values, zone-less microsecond times, Bearer auth with
``401 {"message": "JWT Signature Invalid"}`` and ``404 "No data for time period"``.
Fault switches (latency, 500, 429, timeouts, truncated bodies, duplicate rows) are
set on ``Simulator.faults`` in-process or through ``POST /_sim/faults`` out of process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tsgate.errors import BadParameter
from tsgate.upstream import campus
from tsgate.upstream.campus import SWEEP_MS, SimPoint, SimSite
from tsgate.upstream.wire import (
    Cursor,
    decode_cursor,
    encode_cursor,
    parse_bool,
    parse_page_size,
    parse_range,
)

MAX_SITE_TIMESERIES_MS = 7 * 86_400_000  # the unpaginated site read refuses longer ranges


@dataclass
class Faults:
    """Switches for misbehaviour. ``fail_next`` counts down: ``{"500": 2}`` fails two requests."""

    latency_s: float = 0.0
    error_rate: float = 0.0  # probability of a 500 on a timeseries request
    fail_next: dict[str, int] = field(
        default_factory=dict
    )  # 500 | 429 | timeout | truncate | duplicate
    timeout_s: float = 30.0  # how long a "timeout" fault stalls
    retry_after_s: int = 1
    wrong_pages: bool = False  # reproduce upstream's wrong `pages` count
    fail_after: int | None = None  # timeseries requests after this many more answer 500

    def take(self, kind: str) -> bool:
        left = self.fail_next.get(kind, 0)
        if left > 0:
            self.fail_next[kind] = left - 1
            return True
        return False


@dataclass
class SimStats:
    requests: int = 0
    samples: int = 0
    by_route: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.requests = 0
        self.samples = 0
        self.by_route.clear()


class _Reply(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class Simulator:
    """The ASGI app; ``tokens`` maps token -> readable site names (None: any token, all sites)."""

    def __init__(
        self,
        seed: int = 1,
        *,
        tokens: Mapping[str, Collection[str]] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.seed = seed
        self.sites = campus.build_campus(seed)
        self.site_by_name = {s.name: s for s in self.sites}
        self.point_index = {p.name: (s, p) for s in self.sites for p in s.points}
        self.tokens = None if tokens is None else {t: frozenset(s) for t, s in tokens.items()}
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.faults = Faults()
        self.stats = SimStats()
        self._rng = np.random.default_rng(seed)
        self._app = Starlette(routes=self._routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def _routes(self) -> list[Route]:
        h = self._handle
        return [
            Route("/api/sites", h(self._sites, "sites")),
            Route("/api/sites/{site}", h(self._site, "site")),
            Route("/api/sites/{site}/configured_points", h(self._points, "configured_points")),
            Route("/api/sites/{site}/points", h(self._points, "points")),
            Route(
                "/api/sites/{site}/timeseries/paginated", h(self._paginated, "paginated", ts=True)
            ),
            Route(
                "/api/sites/{site}/timeseries", h(self._site_timeseries, "site_timeseries", ts=True)
            ),
            Route("/api/sites/{site}/weather", h(self._weather, "weather")),
            Route(
                "/api/points/get_timeseries",
                h(self._get_timeseries, "get_timeseries", ts=True),
                methods=["POST"],
            ),
            Route(
                "/api/points/{name:path}/timeseries",
                h(self._point_timeseries, "point_timeseries", ts=True),
            ),
            Route("/_sim/faults", self._set_faults, methods=["GET", "POST"]),
            Route("/_sim/stats", self._get_stats, methods=["GET", "DELETE"]),
        ]

    # ---- request plumbing --------------------------------------------------------

    def _handle(
        self, fn: Callable[[Request], Any], route: str, *, ts: bool = False
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self.stats.requests += 1
            self.stats.by_route[route] += 1
            try:
                self._authorise(request)
                if self.faults.latency_s:
                    await asyncio.sleep(self.faults.latency_s)
                if ts:
                    await self._inject_faults()
                body = await fn(request)
            except _Reply as reply:
                return _json({"message": reply.message}, reply.status, reply.headers)
            except BadParameter as exc:
                return _json({"message": exc.detail}, 400)
            content = msgspec.json.encode(body)
            if ts and self.faults.take("truncate"):
                content = content[: len(content) // 2]
            return Response(content, 200, media_type="application/json")

        return endpoint

    def _authorise(self, request: Request) -> frozenset[str] | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            raise _Reply(401, "Missing Authorization Header")
        if token.lower().startswith("bearer "):
            raise _Reply(401, "JWT Signature Invalid")  # "Bearer Bearer x" is a broken client
        if self.tokens is None:
            return None
        if token not in self.tokens:
            raise _Reply(401, "JWT Signature Invalid")
        allowed = self.tokens[token]
        site = request.path_params.get("site")
        if site is not None and site in self.site_by_name and site not in allowed:
            raise _Reply(403, "Not authorized for this site")
        request.state.allowed = allowed
        return allowed

    async def _inject_faults(self) -> None:
        f = self.faults
        if f.take("timeout"):
            await asyncio.sleep(f.timeout_s)
        if f.take("429"):
            raise _Reply(429, "Too Many Requests", {"Retry-After": str(f.retry_after_s)})
        if f.fail_after is not None:
            if f.fail_after <= 0:
                raise _Reply(500, "Internal Server Error")
            f.fail_after -= 1
        if f.take("500") or (f.error_rate and self._rng.random() < f.error_rate):
            raise _Reply(500, "Internal Server Error")

    def _allowed(self, request: Request, site: str) -> bool:
        allowed: frozenset[str] | None = getattr(request.state, "allowed", None)
        return allowed is None or site in allowed

    def _site_of(self, request: Request) -> SimSite:
        name = request.path_params["site"]
        site = self.site_by_name.get(name)
        if site is None:
            raise _Reply(404, f"Site {name} not found")
        return site

    # ---- metadata ----------------------------------------------------------------

    async def _sites(self, request: Request) -> dict[str, Any]:
        sites = [_site_json(s) for s in self.sites if self._allowed(request, s.name)]
        return self._page(request, sites)

    async def _site(self, request: Request) -> dict[str, Any]:
        return _site_json(self._site_of(request))

    async def _points(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        return self._page(request, [_point_json(site, p) for p in site.points])

    async def _point(self, request: Request) -> dict[str, Any]:
        found = self.point_index.get(request.path_params["name"])
        if found is None:
            raise _Reply(404, f"Point {request.path_params['name']} not found")
        site, point = found
        if not self._allowed(request, site.name):
            raise _Reply(403, "Not authorized for this point")
        return _point_json(site, point)

    async def _weather(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        now = np.array([self.now_ms() // SWEEP_MS], dtype=np.int64)
        oat = next(p for p in site.points if p.kind == "outside_air_temp")
        return {
            "site": site.name,
            "temp": float(campus.values(site, oat, now)[0]),
            "time": _fmt_us(int(now[0]) * SWEEP_MS * 1000),
        }

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        page = _int_param(request, "page", 1, minimum=1)
        per_page = _int_param(request, "per_page", 100, minimum=1, maximum=5000)
        total = len(items)
        pages = -(-total // per_page) if not self.faults.wrong_pages else total // per_page
        chunk = items[(page - 1) * per_page : page * per_page]
        return {"page": page, "pages": pages, "per_page": per_page, "total": total, "items": chunk}

    # ---- timeseries --------------------------------------------------------------

    async def _paginated(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        q = request.query_params
        start_ms, end_ms = parse_range(q.get("start_time"), q.get("end_time"))
        page_size = parse_page_size(q.get("page_size"))
        raw = parse_bool("raw_data", q.get("raw_data"), default=False)
        first_sweep = _first_sweep(start_ms)
        offset = 0
        if q.get("cursor"):
            cursor = decode_cursor(q["cursor"])
            first_sweep = _first_sweep(_parse_ms(cursor.timestamp))
            offset = cursor.offset
        rows, next_cursor = self._site_rows(
            site, first_sweep, offset, start_ms, end_ms, raw, page_size
        )
        if not rows and not q.get("cursor"):
            raise _Reply(404, "No data for time period")
        return {
            "point_samples": rows,
            "next_cursor": next_cursor,
            "has_more": next_cursor is not None,
        }

    async def _site_timeseries(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        start_ms, end_ms = parse_range(
            request.query_params.get("start_time"), request.query_params.get("end_time")
        )
        if end_ms - start_ms > MAX_SITE_TIMESERIES_MS:
            raise _Reply(400, "Time range too large; use /timeseries/paginated")
        rows, _ = self._site_rows(site, _first_sweep(start_ms), 0, start_ms, end_ms, True, 10**9)
        if not rows:
            raise _Reply(404, "No data for time period")
        return {"point_samples": rows}

    async def _point_timeseries(self, request: Request) -> dict[str, Any]:
        name = request.path_params["name"]
        start_ms, end_ms = parse_range(
            request.query_params.get("start_time"), request.query_params.get("end_time")
        )
        found = self.point_index.get(name)
        if found is None:
            raise _Reply(404, f"Point {name} not found")
        site, point = found
        if not self._allowed(request, site.name):
            raise _Reply(403, "Not authorized for this point")
        rows = self._point_rows(site, [point], start_ms, end_ms)
        if not rows:
            raise _Reply(404, "No data for time period")
        return {"point_samples": rows}

    async def _get_timeseries(self, request: Request) -> dict[str, Any]:
        start_ms, end_ms = parse_range(
            request.query_params.get("start_time"), request.query_params.get("end_time")
        )
        try:
            body = msgspec.json.decode(await request.body(), type=dict[str, list[str]])
            names = body["points"]
        except (msgspec.DecodeError, KeyError) as exc:
            raise _Reply(400, 'body must be {"points": [names]}') from exc
        rows: list[dict[str, str]] = []
        for name in dict.fromkeys(names):
            found = self.point_index.get(name)
            if found is None:
                continue
            site, point = found
            if not self._allowed(request, site.name):
                raise _Reply(403, "Not authorized for this point")
            rows.extend(self._point_rows(site, [point], start_ms, end_ms))
        if not rows:
            raise _Reply(404, "No data for time period")
        return {"point_samples": rows}

    def _point_rows(
        self, site: SimSite, points: list[SimPoint], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        rows, _ = _rows(
            site,
            points,
            _first_sweep(start_ms),
            0,
            start_ms,
            min(end_ms, self.now_ms() + 1),
            True,
            10**9,
        )
        self.stats.samples += len(rows)
        return self._maybe_duplicate(rows)

    def _site_rows(
        self,
        site: SimSite,
        first_sweep: int,
        offset: int,
        start_ms: int,
        end_ms: int,
        raw: bool,
        limit: int,
    ) -> tuple[list[dict[str, str]], str | None]:
        end_ms = min(end_ms, self.now_ms() + 1)  # nothing from the future
        rows, cursor = _rows(
            site, list(site.collecting), first_sweep, offset, start_ms, end_ms, raw, limit
        )
        self.stats.samples += len(rows)
        return self._maybe_duplicate(rows), cursor

    def _maybe_duplicate(self, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        if rows and self.faults.take("duplicate"):
            return rows + rows[: max(1, len(rows) // 10)]
        return rows

    # ---- control -----------------------------------------------------------------

    async def _set_faults(self, request: Request) -> Response:
        if request.method == "POST":
            changes = msgspec.json.decode(await request.body(), type=dict[str, Any])
            self.faults = dataclasses.replace(self.faults, **changes)
        return _json(dataclasses.asdict(self.faults), 200)

    async def _get_stats(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.stats.reset()
        return _json(
            {
                "requests": self.stats.requests,
                "samples": self.stats.samples,
                "by_route": dict(self.stats.by_route),
            },
            200,
        )


def create_simulator(
    seed: int = 1,
    *,
    tokens: Mapping[str, Collection[str]] | None = None,
    now_ms: Callable[[], int] | None = None,
) -> Simulator:
    return Simulator(seed, tokens=tokens, now_ms=now_ms)


# ---- sample generation -------------------------------------------------------------

_BATCH_SWEEPS = 288  # generate a day of sweeps at a time


def _rows(
    site: SimSite,
    points: list[SimPoint],
    first_sweep: int,
    offset: int,
    start_ms: int,
    end_ms: int,
    raw: bool,
    limit: int,
) -> tuple[list[dict[str, str]], str | None]:
    """Rows in (sweep time, point) order from ``first_sweep``/``offset``, at most ``limit``.

    Returns the rows and the cursor of the next row, or None when the range is exhausted.
    """
    out: list[dict[str, str]] = []
    sweep = first_sweep
    # exclusive; the slot holding end_ms is included: its sample may lie before end_ms
    last_sweep = -(-end_ms // SWEEP_MS)
    while sweep < last_sweep and len(out) < limit:
        # enough sweeps for the rows still wanted (plus slack for gaps), at most a day
        wanted = (limit - len(out) + offset) // max(1, len(points)) + 2
        batch = max(1, min(_BATCH_SWEEPS, wanted))
        sweeps = np.arange(sweep, min(sweep + batch, last_sweep), dtype=np.int64)
        times_us = campus.sweep_times_us(site, sweeps)
        in_range = (times_us >= start_ms * 1000) & (times_us < end_ms * 1000)
        mask = (
            np.stack([campus.present(site, p, sweeps) for p in points], axis=1) & in_range[:, None]
        )
        vals = np.stack([campus.values(site, p, sweeps) for p in points], axis=1)
        s_idx, p_idx = np.nonzero(mask)  # row-major: sweep first, then point order
        if offset:
            skip = int(np.searchsorted(s_idx, 1, side="left")) if s_idx.size else 0
            # the offset counts rows already served within the first sweep
            drop = min(offset, skip)
            s_idx, p_idx = s_idx[drop:], p_idx[drop:]
            offset = 0
        room = limit - len(out)
        if s_idx.size > room:
            cut_sweep = int(s_idx[room])
            served_in_cut = int(np.count_nonzero(s_idx[:room] == cut_sweep))
            already = int(np.count_nonzero(mask[cut_sweep])) - int(
                np.count_nonzero(s_idx == cut_sweep)
            )
            out.extend(
                _format(site, points, sweeps, times_us, vals, s_idx[:room], p_idx[:room], raw)
            )
            stamp = _fmt_us(int(times_us[cut_sweep]))
            return out, encode_cursor(Cursor(offset=already + served_in_cut, timestamp=stamp))
        out.extend(_format(site, points, sweeps, times_us, vals, s_idx, p_idx, raw))
        sweep = int(sweeps[-1]) + 1
    return out, None


def _format(
    site: SimSite,
    points: list[SimPoint],
    sweeps: np.ndarray[Any, Any],
    times_us: np.ndarray[Any, Any],
    vals: np.ndarray[Any, Any],
    s_idx: np.ndarray[Any, Any],
    p_idx: np.ndarray[Any, Any],
    raw: bool,
) -> list[dict[str, str]]:
    if not s_idx.size:
        return []
    if raw:
        stamps = np.datetime_as_string(times_us.astype("datetime64[us]"), unit="us")
    else:
        # raw_data=false: 5-minute buckets, stamped at the bucket start
        stamps = np.datetime_as_string((sweeps * SWEEP_MS).astype("datetime64[ms]"), unit="s")
    names = [p.name for p in points]
    values = vals[s_idx, p_idx].tolist()
    times = stamps[s_idx].tolist()
    return [
        {"name": names[p], "value": repr(v), "time": t}
        for p, v, t in zip(p_idx.tolist(), values, times, strict=True)
    ]


def _first_sweep(ms: int) -> int:
    # a sweep's samples lie 30–50 s into its slot, so the slot containing ms may still match
    return ms // SWEEP_MS


def _parse_ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def _fmt_us(us: int) -> str:
    return str(np.datetime_as_string(np.datetime64(us, "us"), unit="us"))


def _int_param(
    request: Request, name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _Reply(400, f"{name} must be an integer") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise _Reply(400, f"{name} out of range")
    return value


def _json(obj: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(obj), status, headers=dict(headers or {}), media_type="application/json"
    )


def _site_json(site: SimSite) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "nice_name": site.nice_name,
        "address": None,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "geo_location": None,
        "mqtt_prefix": site.name,
        "client_id": 1,
        "client": "Demo Health System",
        "archived": False,
        "vtron_ip": None,
        "vtron_user": None,
        "ansible_user": None,
    }


def _point_json(site: SimSite, p: SimPoint) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "site_id": site.id,
        "client_id": 1,
        "site": site.name,
        "client": "Demo Health System",
        "marker_tags": _tags(p),
        "kv_tags": {"unit": p.unit, "device": p.device} if p.unit else {"device": p.device},
        "bacnet_data": None,
        "collect_config": None,
        "point_type": "bacnet" if "/analogValue/" in p.name else "niagara",
        "collect_enabled": p.collect,
        "collect_interval": 300,
        "topic_id": None,
        "device_id": None,
    }


def _tags(p: SimPoint) -> list[str]:
    tags = {"point", p.kind.replace("_", "-")}
    if p.kind in (
        "zone_temp",
        "zone_setpoint",
        "discharge_temp",
        "supply_temp",
        "return_temp",
        "outside_air_temp",
        "chw_temp",
    ):
        tags.add("temp")
    if p.kind.endswith("status") or p.kind == "occupancy":
        tags.add("binary")
    if p.device.startswith("Vav"):
        tags.add("vav")
    if p.device.startswith("Ahu"):
        tags.add("ahu")
    return sorted(tags)
