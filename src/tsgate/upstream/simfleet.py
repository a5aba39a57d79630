"""The simulator's metadata paths: every GET of the Swagger that is not a timeseries
(sites, points, clients, gateways, DER events, agent and Hawke configs, VOLTTRON agents
and packages, pcaps, weather), answered from the simulated fleet (``fleet.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.upstream.fleet import CLIENT, Gateway
from tsgate.upstream.simhttp import Reply, bool_param, file_response, required_param
from tsgate.wire.ace import parse_range

if TYPE_CHECKING:
    from tsgate.upstream.simulator import Simulator

Endpoint = Callable[[Request], Any]


class FleetEndpoints:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(
        self,
        handle: Callable[[Endpoint, str], Endpoint],
        collection: Callable[[str, Endpoint], list[Route]],
    ) -> list[Route]:
        """The routes, after the simulator's timeseries ones (``/points/{name}`` would
        otherwise swallow ``/points/{name}/timeseries``)."""
        h = handle
        return [
            *collection("/api/sites/", h(self._sites, "sites")),
            Route("/api/sites/{site}", h(self._site, "site")),
            Route("/api/sites/{site}/configured_points", h(self._points, "configured_points")),
            Route("/api/sites/{site}/points", h(self._points, "points")),
            Route("/api/sites/{site}/weather", h(self._weather, "weather")),
            *collection("/api/points/", h(self._all_points, "all_points")),
            Route("/api/points/{name:path}", h(self._point, "point")),
            *collection("/api/clients/", h(self._clients, "clients")),
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
            *collection("/api/gateways/", h(self._gateways, "gateways")),
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
        ]

    def _gateway_of(self, request: Request) -> Gateway:
        name = request.path_params["gateway"]
        gw = self.sim.gateway_by_name.get(name)
        if gw is None or not self.sim.allowed(request, gw.site.name):
            raise Reply(404, f"Gateway {name} not found")
        return gw

    def _client_of(self, request: Request) -> str:
        name: str = request.path_params["client"]
        if name != CLIENT:
            raise Reply(404, f"Client {name} not found")
        return name

    async def _sites(self, request: Request) -> dict[str, Any]:
        bool_param(request, "collect_enabled", default=False)  # every simulated site collects
        archived = bool_param(request, "show_archived", default=False)
        sites = [
            self.sim.fleet.site(s) for s in self.sim.sites if self.sim.allowed(request, s.name)
        ]
        return self.sim.page(request, [s for s in sites if archived or not s["archived"]])

    async def _site(self, request: Request) -> dict[str, Any]:
        return self.sim.fleet.site(self.sim.site_of(request))

    async def _client_sites(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        sites = [
            self.sim.fleet.site(s) for s in self.sim.sites if self.sim.allowed(request, s.name)
        ]
        return self.sim.page(request, sites)

    async def _points(self, request: Request) -> dict[str, Any]:
        site = self.sim.site_of(request)
        listed = self.sim.faults.visibility().listed  # a late point is listed once added
        now = self.sim.now_ms()
        return self.sim.page(
            request, [self.sim.fleet.point(site, p) for p in site.points if listed(p, now)]
        )

    async def _all_points(self, request: Request) -> dict[str, Any]:
        listed = self.sim.faults.visibility().listed
        now = self.sim.now_ms()
        return self.sim.page(
            request,
            [
                self.sim.fleet.point(s, p)
                for s in self.sim.sites
                if self.sim.allowed(request, s.name)
                for p in s.points
                if listed(p, now)
            ],
        )

    async def _point(self, request: Request) -> dict[str, Any]:
        found = self.sim.point_index.get(request.path_params["name"])
        if found is None:
            raise Reply(404, f"Point {request.path_params['name']} not found")
        site, point = found
        if not self.sim.allowed(request, site.name):
            raise Reply(403, "Not authorized for this point")
        return self.sim.fleet.point(site, point)

    async def _weather(self, request: Request) -> dict[str, Any]:
        site = self.sim.site_of(request)
        return {"weather": self.sim.fleet.weather(site, self.sim.now_ms())}

    async def _clients(self, request: Request) -> dict[str, Any]:
        return self.sim.page(request, [self.sim.fleet.client()])

    async def _client(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        return self.sim.fleet.client()

    async def _client_der(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        return self._der_page(request)

    async def _gateway_der(self, request: Request) -> dict[str, Any]:
        self._gateway_of(request)
        return self._der_page(request)

    def _der_page(self, request: Request) -> dict[str, Any]:
        past = bool_param(request, "get_past_events", default=False)
        group = request.query_params.get("group_name") or None
        return self.sim.page(
            request, self.sim.fleet.der_events(self.sim.now_ms(), past=past, group=group)
        )

    async def _packages(self, request: Request) -> dict[str, Any]:
        self._client_of(request)
        wanted = request.query_params.get("voltron_agent_package_name") or None
        items = [p for p in self.sim.fleet.packages() if wanted in (None, p["package_name"])]
        return self.sim.page(request, items)

    async def _package_file(self, request: Request) -> Response:
        self._client_of(request)
        wanted = required_param(request, "volttron_agent_package_id")
        for p in self.sim.fleet.packages():
            if p["id"] == wanted:
                return file_response(
                    self.sim.fleet.package_file(p["package_name"]), p["object_path"]
                )
        raise Reply(404, f"Volttron agent package {wanted} not found")

    async def _gateways(self, request: Request) -> dict[str, Any]:
        archived = bool_param(request, "show_archived", default=False)
        items = [
            self.sim.fleet.gateway(g)
            for g in self.sim.fleet.gateways
            if self.sim.allowed(request, g.site.name) and (archived or not g.archived)
        ]
        return self.sim.page(request, items)

    async def _gateway(self, request: Request) -> dict[str, Any]:
        return self.sim.fleet.gateway(self._gateway_of(request))

    async def _agent_configs(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        b64 = bool_param(request, "use_base64_hash", default=False)
        active = bool_param(request, "active", default=True)
        identity = request.query_params.get("agent_identity") or None
        items = [
            c
            for c in self.sim.fleet.agent_configs(gw, base64_hash=b64)
            if identity in (None, c["agent_identity"]) and (c["active"] or not active)
        ]
        return self.sim.page(request, items)

    def _hawke(self, request: Request, gw: Gateway, agent: str) -> list[dict[str, Any]]:
        b64 = bool_param(request, "use_base64_hash", default=False)
        history = self.sim.fleet.hawke_history(gw, agent, base64_hash=b64)
        wanted = request.query_params.get("hash") or None
        return [c for c in history if wanted in (None, c["content_hash"])]

    async def _hawke_latest(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        latest = [
            c for a in self.sim.fleet.hawke_agents(gw) for c in self._hawke(request, gw, a)[:1]
        ]
        return self.sim.page(request, latest)

    def _hawke_agent_of(self, request: Request) -> tuple[Gateway, str]:
        gw = self._gateway_of(request)
        agent: str = request.path_params["agent"]
        if agent not in self.sim.fleet.hawke_agents(gw):
            raise Reply(404, f"Hawke agent {agent} not found")
        return gw, agent

    async def _hawke_list(self, request: Request) -> dict[str, Any]:
        gw, agent = self._hawke_agent_of(request)
        return self.sim.page(request, self._hawke(request, gw, agent))

    async def _hawke_agent(self, request: Request) -> dict[str, Any]:
        gw, agent = self._hawke_agent_of(request)
        found = self._hawke(request, gw, agent)
        if not found:
            raise Reply(404, f"Hawke configuration {request.query_params.get('hash')} not found")
        return {k: v for k, v in found[0].items() if k != "hawke_identity"}

    async def _pcap_list(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        start_ms, end_ms = parse_range(
            required_param(request, "start_time"), required_param(request, "end_time")
        )
        return self.sim.page(request, self.sim.fleet.pcap_names(gw, start_ms, end_ms))

    async def _pcap_file(self, request: Request) -> Response:
        gw = self._gateway_of(request)
        name = required_param(request, "file_name")
        if not name.startswith(gw.name + "_") or not name.endswith(".pcap"):
            raise Reply(404, f"File {name} not found")
        return file_response(self.sim.fleet.pcap_file(name), name)

    async def _agent_config_package(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        identity = required_param(request, "volttron_agent_identity")
        b64 = bool_param(request, "use_agent_config_base64_hash", default=False)
        agent = next(
            (a for a in self.sim.fleet.volttron_agents(gw) if a["identity"] == identity), None
        )
        if agent is None:
            raise Reply(404, f"Volttron agent {identity} not found")
        package = next(p for p in self.sim.fleet.packages() if p["id"] == agent["package_id"])
        config = next(
            c
            for c in self.sim.fleet.agent_configs(gw, base64_hash=b64)
            if c["agent_identity"] == identity and c["active"]
        )
        return {"volttron_agent_package": package, "volttron_agent": agent, "agent_config": config}

    async def _volttron_agents(self, request: Request) -> dict[str, Any]:
        gw = self._gateway_of(request)
        identity = request.query_params.get("volttron_agent_identity") or None
        items = [a for a in self.sim.fleet.volttron_agents(gw) if identity in (None, a["identity"])]
        return self.sim.page(request, items)
