"""Reaching the process's services from a request (set by the app lifespan)."""

from __future__ import annotations

from starlette.requests import Request

from tsgate.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.state.services
    return services
