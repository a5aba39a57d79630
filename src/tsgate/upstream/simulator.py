"""An ASGI simulator of the ACE (FlightDeck) API, deterministic from a seed.

It speaks the real contract (DESIGN §1–§2): paginated envelopes, the ``page_size``
enum, base64-JSON cursors, ``raw_data`` 5-minute buckets, per-point reads with
``%2F``-encoded names, string values, zone-less microsecond times, Bearer auth with
``401 {"message": "JWT Signature Invalid"}`` and ``404 "No data for time period"``.
Fault switches (latency, 500, 429, timeouts, truncated bodies, duplicate rows) and
realism switches (a visibility delay, gateway outages with a late backlog, points added
to the catalog later; see ``campus.Visibility``) are set on ``Simulator.faults``
in-process or through ``POST /_sim/faults`` out of process. ``Simulator.truth`` gives
the samples upstream serves for a point, range and as-of time, read from the model
directly (what tests compare tsgate with).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import typing
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from tsgate.errors import BadParameter
from tsgate.upstream import campus
from tsgate.upstream.campus import SWEEP_MS, LatePoint, Outage, SimPoint, SimSite, Visibility
from tsgate.upstream.fieldmask import HEADER as MASK_HEADER
from tsgate.upstream.fieldmask import apply_mask, parse_mask
from tsgate.upstream.fleet import CLIENT, Fleet, Gateway
from tsgate.upstream.wire import (
    PER_PAGE,
    Cursor,
    decode_cursor,
    encode_cursor,
    parse_bool,
    parse_page_size,
    parse_range,
    parse_time,
)

MAX_SITE_TIMESERIES_MS = 7 * 86_400_000  # the unpaginated site read refuses longer ranges
REDIRECT_MODES = ("none", "flask")
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_INVALID = "Input payload validation failed"


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
    visibility_delay_s: float = 0.0  # a sample at t is visible upstream from t + delay …
    visibility_jitter_s: float = 0.0  # … + a random 0–jitter (per point and sweep)
    outages: list[Outage] = field(default_factory=list)  # gateway outages, late backlogs
    late_points: list[LatePoint] = field(default_factory=list)  # points added later

    def visibility(self) -> Visibility:
        return Visibility(
            self.visibility_delay_s,
            self.visibility_jitter_s,
            tuple(self.outages),
            tuple(self.late_points),
        )

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
    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        errors: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.body: dict[str, Any] = {"message": message}
        if errors:
            # Flask-RESTX's request-parser refusal: {"errors": {param: why}, "message": …}
            self.body = {"errors": dict(errors), "message": message}


class Simulator:
    """The ASGI app; ``tokens`` maps token -> readable site names (None: any token, all sites).

    ``redirects`` chooses the slash behaviour of the collections the Swagger declares with
    a trailing slash (``/sites/``, ``/points/``, ``/clients/``, ``/gateways/``): ``"none"``
    answers both spellings, ``"flask"`` answers the declared one and redirects the other
    with a ``308`` as a Flask-RESTX server does.
    """

    def __init__(
        self,
        seed: int = 1,
        *,
        tokens: Mapping[str, Collection[str]] | None = None,
        now_ms: Callable[[], int] | None = None,
        redirects: str = "none",
    ) -> None:
        if redirects not in REDIRECT_MODES:
            modes = ", ".join(REDIRECT_MODES)
            raise ValueError(f"redirects: {redirects!r} is not one of {modes}")
        self.seed = seed
        self.redirects = redirects
        self.sites = campus.build_campus(seed)
        self.site_by_name = {s.name: s for s in self.sites}
        self.point_index = {p.name: (s, p) for s in self.sites for p in s.points}
        self.fleet = Fleet(seed, self.sites)
        self.gateway_by_name = {g.name: g for g in self.fleet.gateways}
        self.tokens = None if tokens is None else {t: frozenset(s) for t, s in tokens.items()}
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.faults = Faults()
        self.stats = SimStats()
        self._rng = np.random.default_rng(seed)
        self._app = Router(routes=self._routes(), redirect_slashes=False, default=_no_route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def truth(
        self, name: str, start_ms: int, end_ms: int, as_of_ms: int | None = None
    ) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.float64]]]:
        """The samples (µs times, values) of ``name`` in ``[start_ms, end_ms)`` that
        upstream serves at ``as_of_ms`` (default: now), straight from the model."""
        site, point = self.point_index[name]
        as_of = self.now_ms() if as_of_ms is None else as_of_ms
        return campus.samples(
            site, point, start_ms, end_ms, as_of_ms=as_of, visibility=self.faults.visibility()
        )

    def _routes(self) -> list[Route]:
        h = self._handle
        routes = [
            *self._collection("/api/sites/", h(self._sites, "sites")),
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
            *self._collection("/api/points/", h(self._all_points, "all_points")),
            Route(
                "/api/points/get_timeseries",
                h(self._get_timeseries, "get_timeseries", ts=True),
                methods=["POST"],
            ),
            Route(
                "/api/points/{name:path}/timeseries",
                h(self._point_timeseries, "point_timeseries", ts=True),
            ),
            Route("/api/points/{name:path}", h(self._point, "point")),
            *self._collection("/api/clients/", h(self._clients, "clients")),
            Route("/api/clients/{client}", h(self._client, "client")),
            Route("/api/clients/{client}/sites", h(self._client_sites, "client_sites")),
            Route("/api/clients/{client}/der_events", h(self._client_der, "client_der_events")),
            Route(
                "/api/clients/{client}/volttron_agent_package/list",
                h(self._packages, "volttron_agent_packages"),
            ),
            Route(
                "/api/clients/{client}/volttron_agent_package",
                h(self._package_file, "volttron_agent_package"),
            ),
            *self._collection("/api/gateways/", h(self._gateways, "gateways")),
            Route("/api/gateways/{gateway}", h(self._gateway, "gateway")),
            Route("/api/gateways/{gateway}/agent_configs", h(self._agent_configs, "agent_configs")),
            Route("/api/gateways/{gateway}/der_events", h(self._gateway_der, "gateway_der_events")),
            Route(
                "/api/gateways/{gateway}/hawke_configuration",
                h(self._hawke_latest, "hawke_configuration"),
            ),
            Route(
                "/api/gateways/{gateway}/hawke_configuration/{agent}/list",
                h(self._hawke_list, "hawke_configuration_list"),
            ),
            Route(
                "/api/gateways/{gateway}/hawke_configuration/{agent}",
                h(self._hawke_agent, "hawke_agent_configuration"),
            ),
            Route("/api/gateways/{gateway}/pcap/list", h(self._pcap_list, "pcap_list")),
            Route("/api/gateways/{gateway}/pcap", h(self._pcap_file, "pcap")),
            Route(
                "/api/gateways/{gateway}/volttron_agent_config_package",
                h(self._agent_config_package, "volttron_agent_config_package"),
            ),
            Route(
                "/api/gateways/{gateway}/volttron_agents",
                h(self._volttron_agents, "volttron_agents"),
            ),
            Route("/_sim/faults", self._set_faults, methods=["GET", "POST"]),
            Route("/_sim/stats", self._get_stats, methods=["GET", "DELETE"]),
        ]
        return routes

    def _collection(self, path: str, endpoint: Callable[[Request], Any]) -> list[Route]:
        """A collection declared as ``path`` (with its slash) and its other spelling."""
        other = path.rstrip("/")
        if self.redirects == "flask":
            return [Route(path, endpoint), Route(other, _redirect_308(path), methods=_ANY)]
        return [Route(path, endpoint), Route(other, endpoint)]

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
                mask = parse_mask(request.headers.get(MASK_HEADER, ""))
                body = await fn(request)
            except _Reply as reply:
                return _json(reply.body, reply.status, reply.headers)
            except BadParameter as exc:
                return _json({"message": exc.detail}, 400)
            if isinstance(body, Response):
                return body
            content = msgspec.json.encode(apply_mask(body, mask))
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

    def _gateway_of(self, request: Request) -> Gateway:
        name = request.path_params["gateway"]
        gw = self.gateway_by_name.get(name)
        if gw is None or not self._allowed(request, gw.site.name):
            raise _Reply(404, f"Gateway {name} not found")
        return gw

    def _client_of(self, request: Request) -> str:
        name: str = request.path_params["client"]
        if name != CLIENT:
            raise _Reply(404, f"Client {name} not found")
        return name

    # ---- metadata ----------------------------------------------------------------

    async def _sites(self, request: Request) -> dict[str, Any]:
        _bool(request, "collect_enabled", default=False)  # every simulated site collects
        archived = _bool(request, "show_archived", default=False)
        sites = [self.fleet.site(s) for s in self.sites if self._allowed(request, s.name)]
        return self._page(request, [s for s in sites if archived or not s["archived"]])

    async def _site(self, request: Request) -> dict[str, Any]:
        return self.fleet.site(self._site_of(request))

    async def _client_sites(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        sites = [self.fleet.site(s) for s in self.sites if self._allowed(request, s.name)]
        return self._page(request, sites)

    async def _points(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        listed = self.faults.visibility().listed
        now = self.now_ms()
        return self._page(
            request, [self.fleet.point(site, p) for p in site.points if listed(p, now)]
        )

    async def _all_points(self, request: Request) -> dict[str, Any]:
        listed = self.faults.visibility().listed
        now = self.now_ms()
        return self._page(
            request,
            [
                self.fleet.point(s, p)
                for s in self.sites
                if self._allowed(request, s.name)
                for p in s.points
                if listed(p, now)
            ],
        )

    async def _point(self, request: Request) -> dict[str, Any]:
        found = self.point_index.get(request.path_params["name"])
        if found is None:
            raise _Reply(404, f"Point {request.path_params['name']} not found")
        site, point = found
        if not self._allowed(request, site.name):
            raise _Reply(403, "Not authorized for this point")
        return self.fleet.point(site, point)

    async def _weather(self, request: Request) -> dict[str, Any]:
        site = self._site_of(request)
        return {"weather": self.fleet.weather(site, self.now_ms())}

    async def _clients(self, request: Request) -> dict[str, Any]:
        return self._page(request, [self.fleet.client()])

    async def _client(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        return self.fleet.client()

    async def _client_der(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        return self._der_page(request)

    async def _gateway_der(self, request: Request) -> dict[str, Any]:
        self._gateway_of(request)
        return self._der_page(request)

    def _der_page(self, request: Request) -> dict[str, Any]:
        past = _bool(request, "get_past_events", default=False)
        group = request.query_params.get("group_name") or None
        return self._page(request, self.fleet.der_events(self.now_ms(), past=past, group=group))

    async def _packages(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        wanted = request.query_params.get("voltron_agent_package_name") or None
        items = [p for p in self.fleet.packages() if wanted in (None, p["package_name"])]
        return self._page(request, items)

    async def _package_file(self, request: Request) -> Response:
        self._client_of(request)
        wanted = _required(request, "volttron_agent_package_id")
        for p in self.fleet.packages():
            if p["id"] == wanted:
                return _file(self.fleet.package_file(p["package_name"]), p["object_path"])
        raise _Reply(404, f"Volttron agent package {wanted} not found")

    async def _gateways(self, request: Request) -> dict[str, Any]:
        archived = _bool(request, "show_archived", default=False)
        items = [
            self.fleet.gateway(g)
            for g in self.fleet.gateways
            if self._allowed(request, g.site.name) and (archived or not g.archived)
        ]
        return self._page(request, items)

    async def _gateway(self, request: Request) -> dict[str, Any]:
        return self.fleet.gateway(self._gateway_of(request))

    async def _agent_configs(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        b64 = _bool(request, "use_base64_hash", default=False)
        active = _bool(request, "active", default=True)
        identity = request.query_params.get("agent_identity") or None
        items = [
            c
            for c in self.fleet.agent_configs(gw, base64_hash=b64)
            if identity in (None, c["agent_identity"]) and (c["active"] or not active)
        ]
        return self._page(request, items)

    def _hawke(self, request: Request, gw: Gateway, agent: str) -> list[dict[str, Any]]:
        b64 = _bool(request, "use_base64_hash", default=False)
        history = self.fleet.hawke_history(gw, agent, base64_hash=b64)
        wanted = request.query_params.get("hash") or None
        return [c for c in history if wanted in (None, c["content_hash"])]

    async def _hawke_latest(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        latest = [c for a in self.fleet.hawke_agents(gw) for c in self._hawke(request, gw, a)[:1]]
        return self._page(request, latest)

    def _hawke_agent_of(self, request: Request) -> tuple[Gateway, str]:
        gw = self._gateway_of(request)
        agent: str = request.path_params["agent"]
        if agent not in self.fleet.hawke_agents(gw):
            raise _Reply(404, f"Hawke agent {agent} not found")
        return gw, agent

    async def _hawke_list(self, request: Request) -> dict[str, Any]:
        gw, agent = self._hawke_agent_of(request)
        return self._page(request, self._hawke(request, gw, agent))

    async def _hawke_agent(self, request: Request) -> dict[str, Any]:
        gw, agent = self._hawke_agent_of(request)
        found = self._hawke(request, gw, agent)
        if not found:
            raise _Reply(404, f"Hawke configuration {request.query_params.get('hash')} not found")
        return {k: v for k, v in found[0].items() if k != "hawke_identity"}

    async def _pcap_list(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        start_ms, end_ms = parse_range(
            _required(request, "start_time"), _required(request, "end_time")
        )
        return self._page(request, self.fleet.pcap_names(gw, start_ms, end_ms))

    async def _pcap_file(self, request: Request) -> Response:
        gw = self._gateway_of(request)
        name = _required(request, "file_name")
        if not name.startswith(gw.name + "_") or not name.endswith(".pcap"):
            raise _Reply(404, f"File {name} not found")
        return _file(self.fleet.pcap_file(name), name)

    async def _agent_config_package(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        identity = _required(request, "volttron_agent_identity")
        b64 = _bool(request, "use_agent_config_base64_hash", default=False)
        agent = next((a for a in self.fleet.volttron_agents(gw) if a["identity"] == identity), None)
        if agent is None:
            raise _Reply(404, f"Volttron agent {identity} not found")
        package = next(p for p in self.fleet.packages() if p["id"] == agent["package_id"])
        config = next(
            c
            for c in self.fleet.agent_configs(gw, base64_hash=b64)
            if c["agent_identity"] == identity and c["active"]
        )
        return {"volttron_agent_package": package, "volttron_agent": agent, "agent_config": config}

    async def _volttron_agents(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        identity = request.query_params.get("volttron_agent_identity") or None
        items = [a for a in self.fleet.volttron_agents(gw) if identity in (None, a["identity"])]
        return self._page(request, items)

    def _page(self, request: Request, items: Sequence[Any]) -> dict[str, Any]:
        page = _choice_or_int(request, "page", "Page number", 1)
        per_page = _choice_or_int(request, "per_page", "Results per page", 10, PER_PAGE)
        if page < 1:
            page = 1
        total = len(items)
        pages = -(-total // per_page) if not self.faults.wrong_pages else total // per_page
        chunk = list(items[(page - 1) * per_page : page * per_page])
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
        names = _body_point_names(await request.body())
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
        now = self.now_ms()
        rows, _ = _rows(
            site,
            points,
            _first_sweep(start_ms),
            0,
            (start_ms, min(end_ms, now + 1)),
            (self.faults.visibility(), now),
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
        now = self.now_ms()
        end_ms = min(end_ms, now + 1)  # nothing from the future
        rows, cursor = _rows(
            site,
            list(site.collecting),
            first_sweep,
            offset,
            (start_ms, end_ms),
            (self.faults.visibility(), now),
            raw,
            limit,
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
            try:
                self.faults = dataclasses.replace(self.faults, **_fault_changes(changes))
            except (TypeError, ValueError, msgspec.ValidationError, BadParameter) as exc:
                return _json({"message": f"bad faults: {exc}"}, 400)
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
    redirects: str = "none",
) -> Simulator:
    return Simulator(seed, tokens=tokens, now_ms=now_ms, redirects=redirects)


# ---- sample generation -------------------------------------------------------------

_BATCH_SWEEPS = 288  # generate a day of sweeps at a time


def _rows(
    site: SimSite,
    points: list[SimPoint],
    first_sweep: int,
    offset: int,
    span: tuple[int, int],
    seen: tuple[Visibility, int],
    raw: bool,
    limit: int,
) -> tuple[list[dict[str, str]], str | None]:
    """Rows in (sweep time, point) order from ``first_sweep``/``offset``, at most ``limit``:
    the samples in ``span`` (``[start_ms, end_ms)``) visible at ``seen`` (visibility, now).

    Returns the rows and the cursor of the next row, or None when the range is exhausted.
    """
    start_ms, end_ms = span
    visibility, now_ms = seen
    out: list[dict[str, str]] = []
    sweep = first_sweep
    # exclusive; the sweep holding end_ms - 1 may have samples before end_ms (they lie
    # 30–50 s into its slot), so a window split anywhere serves what the whole one does
    last_sweep = _first_sweep(end_ms - 1) + 1
    while sweep < last_sweep:  # a full page goes on to find the next row for its cursor
        # enough sweeps for the rows still wanted (plus slack for gaps), at most a day
        wanted = (limit - len(out) + offset) // max(1, len(points)) + 2
        batch = max(1, min(_BATCH_SWEEPS, wanted))
        sweeps = np.arange(sweep, min(sweep + batch, last_sweep), dtype=np.int64)
        times_us = campus.sweep_times_us(site, sweeps)
        in_range = (times_us >= start_ms * 1000) & (times_us < end_ms * 1000)
        mask = (
            np.stack(
                [
                    campus.present(site, p, sweeps)
                    & visibility.visible(p, sweeps, times_us, now_ms)
                    for p in points
                ],
                axis=1,
            )
            & in_range[:, None]
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


def _fault_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """JSON switches to ``Faults`` fields: outages and late points from objects whose
    times are epoch ms or ISO 8601 strings (``start``, ``end``, ``backlog``, ``added``,
    ``since`` with or without the ``_ms`` suffix)."""
    hints = typing.get_type_hints(Faults)
    out = {
        k: v if k in ("outages", "late_points") or k not in hints else msgspec.convert(v, hints[k])
        for k, v in changes.items()
    }
    if "outages" in out:
        out["outages"] = [
            Outage(
                start_ms=_ms_field(o, "start"),
                end_ms=_ms_field(o, "end"),
                backlog_ms=_ms_field(o, "backlog", optional=True),
                site=o.get("site"),
                points=tuple(o.get("points") or ()),
            )
            for o in msgspec.convert(out["outages"], list[dict[str, Any]])
        ]
    if "late_points" in out:
        out["late_points"] = [
            LatePoint(
                name=msgspec.convert(p.get("name"), str),
                added_ms=_ms_field(p, "added"),
                since_ms=_ms_field(p, "since", optional=True),
            )
            for p in msgspec.convert(out["late_points"], list[dict[str, Any]])
        ]
    return out


def _ms_field(obj: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    raw = obj.get(f"{key}_ms", obj.get(key))
    if raw is None:
        if optional:
            return None
        raise ValueError(f"{key} is required")
    if isinstance(raw, str):
        return parse_time(key, raw)
    return msgspec.convert(raw, int)


def _first_sweep(ms: int) -> int:
    # a sweep's samples lie 30–50 s into its slot, so the slot containing ms may still match
    return ms // SWEEP_MS


def _parse_ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def _fmt_us(us: int) -> str:
    return str(np.datetime_as_string(np.datetime64(us, "us"), unit="us"))


def _json(obj: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(obj), status, headers=dict(headers or {}), media_type="application/json"
    )


def _body_point_names(raw: bytes) -> list[str]:
    """Names from ``{"points": ["a", …]}`` or the Swagger's ``{"points": [{"name": "a"}]}``."""
    try:
        body = msgspec.json.decode(raw, type=dict[str, list[str | dict[str, Any]]])
        points = body["points"]
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        raise _Reply(400, 'body must be {"points": [{"name": …}]}') from exc
    names = [p if isinstance(p, str) else p.get("name") for p in points]
    if not all(isinstance(n, str) for n in names):
        raise _Reply(400, 'every entry of "points" needs a "name"')
    return [n for n in names if isinstance(n, str)]


def _bool(request: Request, name: str, *, default: bool) -> bool:
    raw = request.query_params.get(name)
    try:
        return parse_bool(name, raw, default=default)
    except BadParameter as exc:
        raise _Reply(400, _INVALID, errors={name: f"{raw!r} is not a valid boolean"}) from exc


def _required(request: Request, name: str) -> str:
    raw = request.query_params.get(name)
    if not raw:
        raise _Reply(400, _INVALID, errors={name: "Missing required parameter in the query string"})
    return raw


def _choice_or_int(
    request: Request, name: str, help_text: str, default: int, choices: Collection[int] = ()
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        reason = f"{help_text} invalid literal for int() with base 10: {raw!r}"
        raise _Reply(400, _INVALID, errors={name: reason}) from exc
    if choices and value not in choices:
        reason = f"{help_text} The value '{value}' is not a valid choice for '{name}'."
        raise _Reply(400, _INVALID, errors={name: reason})
    return value


def _file(content: bytes, name: str) -> Response:
    filename = name.rsplit("/", 1)[-1]
    return Response(
        content,
        200,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _redirect_308(target: str) -> Callable[[Request], Awaitable[Response]]:
    """Werkzeug's answer to the undeclared spelling: 308 to the declared one, query kept."""

    async def redirect(request: Request) -> Response:
        location = str(request.url.replace(path=target))
        body = (
            "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n"
            "<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target"
            f' URL: <a href="{location}">{location}</a>. If not, click the link.\n'
        )
        return Response(body, 308, headers={"Location": location}, media_type="text/html")

    return redirect


async def _no_route(scope: Scope, receive: Receive, send: Send) -> None:
    message = (
        "The requested URL was not found on the server. If you entered the URL manually"
        " please check your spelling and try again."
    )
    await _json({"message": message}, 404)(scope, receive, send)
