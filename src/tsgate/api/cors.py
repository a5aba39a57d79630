"""CORS as Starlette's ``CORSMiddleware`` answers it, at the cost of a header scan.

Starlette's middleware builds a ``Headers`` view of every request and a
``MutableHeaders`` view of every response start; here the request's headers are
scanned once for ``Origin`` and the preflight headers, and the response start gets its
CORS headers by a few list operations with header names and values encoded once, when
the policy is built. Preflight requests (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) are answered by Starlette's own preflight response,
so allowed and refused preflights are exactly Starlette's. The fast path
(``api/fastpath.py``) applies the same :meth:`CorsPolicy.apply` to its ready answers,
so a kept answer has the headers the full path gives it, ``Vary`` included.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VARY = b"vary"
_ORIGIN = b"Origin"
_ALLOW_ORIGIN = b"access-control-allow-origin"

RawHeaders = list[tuple[bytes, bytes]]


class CorsPolicy:
    """Which origins may read answers, and the response headers that say so."""

    def __init__(
        self,
        allow_origins: Collection[str],
        *,
        allow_methods: Collection[str],
        allow_headers: Collection[str],
        expose_headers: Collection[str],
    ) -> None:
        # Starlette's middleware keeps the rules and answers preflights; it never serves
        self._starlette = CORSMiddleware(
            _never,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
        )
        self._simple = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in self._starlette.simple_headers.items()
        ]
        self._all_origins = self._starlette.allow_all_origins

    def apply(self, headers: RawHeaders, origin: bytes | None) -> None:
        """Add the CORS headers of an answer to a request with ``origin`` (``None``: no
        ``Origin`` header) to ``headers``, in place, as Starlette's middleware does."""
        if origin is None:
            add_vary(headers)
            return
        for name, value in self._simple:
            _set(headers, name, value)
        if not self._all_origins and self._starlette.is_allowed_origin(origin.decode("latin-1")):
            _set(headers, _ALLOW_ORIGIN, origin)
        add_vary(headers)

    def preflight(self, scope: Scope) -> ASGIApp:
        """Starlette's answer to a preflight request."""
        return self._starlette.preflight_response(request_headers=Headers(scope=scope))


async def _never(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise RuntimeError("the CORS policy only answers preflights")


def _set(headers: RawHeaders, name: bytes, value: bytes) -> None:
    """``MutableHeaders.__setitem__``: the first ``name`` takes ``value``, later ones go."""
    found = [i for i, (k, _) in enumerate(headers) if k == name]
    if not found:
        headers.append((name, value))
        return
    for i in reversed(found[1:]):
        del headers[i]
    headers[found[0]] = (name, value)


def add_vary(headers: RawHeaders) -> None:
    """``Vary`` gains ``Origin`` (every ``Vary`` joined into the first, as Starlette does)."""
    found = [i for i, (k, _) in enumerate(headers) if k == _VARY]
    if not found:
        headers.append((_VARY, _ORIGIN))
        return
    value = b", ".join([*(headers[i][1] for i in found), _ORIGIN])
    for i in reversed(found[1:]):
        del headers[i]
    headers[found[0]] = (_VARY, value)


def request_origin(scope: Scope) -> tuple[bytes | None, bool]:
    """The request's first ``Origin`` and whether it asks ``Access-Control-Request-Method``."""
    origin: bytes | None = None
    asks_method = False
    for name, value in scope["headers"]:
        if name == b"origin":
            if origin is None:
                origin = value
        elif name == b"access-control-request-method":
            asks_method = True
    return origin, asks_method


class CorsMiddleware:
    """Answers preflights; adds the CORS headers to every other answer's start."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin, asks_method = request_origin(scope)
        if origin is not None and asks_method and scope["method"] == "OPTIONS":
            await self.policy.preflight(scope)(scope, receive, send)
            return
        policy = self.policy

        async def send_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                policy.apply(headers, origin)
            await send(message)

        await self.app(scope, receive, send_cors)
