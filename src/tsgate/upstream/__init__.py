"""The upstream ACE API seam: ``open_upstream(url)`` picks the adapter by scheme.

``sim://?seed=N`` runs the real ACE client against the built-in simulator over an
in-process ASGI transport (``&redirects=flask`` makes it answer the undeclared slash
spelling of a collection with a 308, as Flask-RESTX does); ``http(s)://host/api``
talks to a real ACE server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tsgate.errors import ConfigError

if TYPE_CHECKING:  # importing the seam (its options, for the settings) loads no client
    from tsgate.upstream.guarded import GuardedUpstream
    from tsgate.upstream.options import UpstreamSettings

SCHEMES = ("sim", "http", "https")


def open_upstream(settings: UpstreamSettings) -> GuardedUpstream:
    """The upstream client for ``settings.upstream_url`` (close it with ``aclose()``)."""
    import httpx

    from tsgate.upstream.ace import AceClient, ClientPolicy

    url = settings.upstream_url
    parts = urlsplit(url)
    policy = ClientPolicy.of(settings)
    if parts.scheme == "sim":
        from tsgate.upstream.simulator import create_simulator

        query = parse_qs(parts.query)
        try:
            seed = int(query.get("seed", ["1"])[0])
        except ValueError as exc:
            raise ConfigError(f"upstream {url!r}: seed must be an integer") from exc
        try:
            sim = create_simulator(seed=seed, redirects=query.get("redirects", ["none"])[0])
        except ValueError as exc:
            raise ConfigError(f"upstream {url!r}: {exc}") from exc
        transport = httpx.ASGITransport(app=sim)
        return AceClient("http://simulator/api", policy, transport=transport)
    if parts.scheme in ("http", "https"):
        return AceClient(url.rstrip("/"), policy)
    supported = ", ".join(f"{s}://" for s in SCHEMES)
    raise ConfigError(
        f"upstream: unsupported scheme {parts.scheme!r} in {url!r}; use one of {supported}"
    )
