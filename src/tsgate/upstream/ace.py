"""The ACE API client on httpx: auth, bounded concurrency, retries, numpy parsing.

Retries use exponential backoff with equal jitter (``backoff.py``) on 429 (honouring
``Retry-After``), 5xx, connection errors, timeouts and broken bodies. Anything else is
translated into ``tsgate.errors`` at once. A short or broken answer is never returned as
data.
:class:`AceApi` is the adapter (typed reads of one request each, reporting what they
cost to ``upstream.metering``); :class:`AceClient` is it inside the one wrapper
(``upstream/guarded.py``: the circuit breaker, the counters, long reads fanned out).

Redirects to the same origin are followed (at most ``MAX_REDIRECTS``), as a Flask-RESTX
upstream answers the undeclared slash spelling of a collection with a 308. A redirect
elsewhere is never followed with the token: the data reads refuse it, pass-through
relays it. A 2xx answer that is not JSON (or is empty) where JSON is needed is an
``UpstreamBadAnswer``: upstream is alive, so it is neither retried nor a breaker failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from tsgate import backoff
from tsgate.errors import (
    NotFound,
    UpstreamBadAnswer,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tsgate.samples import Series
from tsgate.upstream import metering
from tsgate.upstream.base import Forwarded, Page, SitePage, upstream_error
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.costs import RequestCosts
from tsgate.upstream.fairgate import FairGate
from tsgate.upstream.guarded import GuardedUpstream
from tsgate.upstream.options import UpstreamSettings
from tsgate.wire.ace import format_time
from tsgate.wire.acebody import DataBody, decode_page, decode_samples

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# hop-by-hop headers (RFC 9110 §7.6.1) and those the relaying response sets itself
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "content-type",
        "date",
        "server",
        "vary",
    }
)
# response headers tsgate's own middleware sets (CORS, request id, rate limits): never
# relayed from upstream, so the caller never sees two of them
_OWN_HEADERS = frozenset(
    {
        "x-request-id",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    }
)
# request headers never passed on: hop-by-hop, the caller's credentials (converted),
# and what httpx sets for the upstream connection
_NOT_FORWARDED = HOP_BY_HOP | {
    "host",
    "authorization",
    "x-ace-token",
    "accept",
    "accept-encoding",
    "cookie",
    "origin",
    "referer",
}
NO_DATA = "no data for time period"


@dataclass(frozen=True)
class ClientPolicy:
    timeout_s: float = 60.0
    concurrency: int = 8
    retries: int = 4
    backoff_s: float = 0.5
    backoff_cap_s: float = 10.0
    page_size: int = 50000
    breaker_failures: int = 5  # consecutive failed calls that open the circuit; 0: never
    breaker_reset_s: float = 30.0  # how long it stays open before one trial call

    @classmethod
    def of(cls, s: UpstreamSettings) -> ClientPolicy:
        return cls(
            timeout_s=s.upstream_timeout_s,
            concurrency=s.upstream_concurrency,
            retries=s.upstream_retries,
            backoff_s=s.upstream_backoff_s,
            backoff_cap_s=s.upstream_backoff_cap_s,
            page_size=s.upstream_page_size,
            breaker_failures=s.breaker_failures,
            breaker_reset_s=s.breaker_reset_s,
        )

    def delay_s(self, attempt: int, rand: float) -> float:
        """The backoff before the ``attempt``-th retry (0-based), equal-jittered by ``rand``."""
        ceiling = backoff.ceiling_s(attempt, base_s=self.backoff_s, cap_s=self.backoff_cap_s)
        return backoff.equal_jitter_s(ceiling, rand)


class _Retryable(Exception):
    def __init__(
        self,
        reason: str,
        retry_after_s: float | None = None,
        timeout: bool = False,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.timeout = timeout
        self.rate_limited = rate_limited


class _ServerFailed(UpstreamUnavailable):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"upstream answered HTTP {response.status_code}")
        self.response = response


class AceApi:
    """The adapter: typed reads of one ACE API base URL (``…/api``), one request each."""

    def __init__(
        self,
        base_url: str,
        policy: ClientPolicy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        costs: RequestCosts | None = None,
    ) -> None:
        self.policy = policy or ClientPolicy()
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.policy.timeout_s, connect=min(10.0, self.policy.timeout_s)),
            limits=httpx.Limits(max_connections=max(self.policy.concurrency * 2, 10)),
        )
        # the per-process concurrency bound, its slots taken in turns by caller (token)
        self._gate = FairGate(self.policy.concurrency)
        self.costs = costs or RequestCosts()  # what data requests cost, for the planner
        self._sleep = sleep
        self._rand = rand

    async def aclose(self) -> None:
        await self._http.aclose()

    def _measured(self, meter: metering.Meter, rows: int) -> None:
        """One data request done: its rows counted, its cost observed."""
        metering.sampled(rows)
        self.costs.observe(meter.seconds, rows)

    # ---- the seam: AceReads --------------------------------------------------------------

    async def sites_page(self, page: int, per_page: int, *, token: str) -> Page:
        return await self._listing("/sites/", page, per_page, token)  # the declared spelling

    async def site(self, site: str, *, token: str) -> dict[str, Any]:
        return await self._object(f"/sites/{quote(site, safe='')}", token)

    async def point(self, name: str, *, token: str) -> dict[str, Any]:
        return await self._object(f"/points/{quote(name, safe='')}", token)

    async def configured_points_page(
        self, site: str, page: int, per_page: int, *, token: str
    ) -> Page:
        path = f"/sites/{quote(site, safe='')}/configured_points"
        return await self._listing(path, page, per_page, token)

    async def site_page(
        self,
        site: str,
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        raw: bool,
        page_size: int,
        cursor: str | None,
    ) -> SitePage:
        path = f"/sites/{quote(site, safe='')}/timeseries/paginated"
        params: dict[str, str | int] = {
            "start_time": format_time(start_ms),
            "end_time": format_time(end_ms),
            "page_size": page_size,
            "raw_data": "true" if raw else "false",
        }
        if cursor is not None:
            params["cursor"] = cursor
        with metering.metered() as meter:
            page = await self._call(
                "GET", path, token, params=params, parse=decode_page, no_data=DataBody()
            )
        self._measured(meter, len(page))
        return SitePage(_series(page, path), page.has_more, page.next_cursor)

    async def points_batch(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        params = {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}
        with metering.metered() as meter:
            body = await self._call(
                "POST",
                "/points/get_timeseries",
                token,
                params=params,
                json={"points": list(names)},
                parse=decode_samples,
                no_data=DataBody(),
            )
        self._measured(meter, len(body))
        found = _series(body, "/points/get_timeseries")
        return {n: found.get(n, Series.empty(n)).crop(start_ms, end_ms) for n in names}

    async def point_window(self, name: str, start_ms: int, end_ms: int, *, token: str) -> Series:
        path = f"/points/{quote(name, safe='')}/timeseries"
        params = {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}
        with metering.metered() as meter:
            body = await self._call(
                "GET", path, token, params=params, parse=decode_samples, no_data=DataBody()
            )
        self._measured(meter, len(body))
        series = _series(body, path).get(name, Series.empty(name))
        return series.crop(start_ms, end_ms)

    async def forward(
        self,
        method: str,
        path: str,
        *,
        token: str,
        query: str = "",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        url = self.base_url + path + (f"?{query}" if query else "")
        sent = {k: v for k, v in (headers or {}).items() if k.lower() not in _NOT_FORWARDED}
        sent.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        if content_type:
            sent["Content-Type"] = content_type

        async def send() -> httpx.Response:
            try:
                resp = await self._send(method, url, content=body or None, headers=sent)
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(
                    f"upstream {method} {path}: no answer in {self.policy.timeout_s:g} s"
                ) from exc
            except httpx.TransportError as exc:
                detail = f"upstream {method} {path}: {type(exc).__name__}"
                raise UpstreamUnavailable(detail) from exc
            if resp.status_code >= 500:
                raise _ServerFailed(resp)  # a failure to the breaker, passed through as is
            return resp

        # the path is the caller's: a 5xx is its answer, passed through as is
        try:
            resp = await send()
        except _ServerFailed as failed:
            resp = failed.response
        dropped = HOP_BY_HOP | _OWN_HEADERS
        keep = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in dropped]
        return Forwarded(
            resp.status_code,
            resp.content,
            resp.headers.get("content-type", "application/json" if resp.content else ""),
            dict(keep),
        )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        content: bytes | None = None,
        strict_origin: bool = False,
    ) -> httpx.Response:
        """One request, following same-origin redirects; every hop counts as a request."""
        request = self._http.build_request(
            method, url, params=params, json=json, content=content, headers=headers
        )
        for _ in range(MAX_REDIRECTS + 1):
            async with self._gate.slot(headers.get("Authorization", "")):
                began = time.perf_counter()
                resp = await self._http.send(request)
                took = time.perf_counter() - began
            _unbind(resp)
            metering.record(1, len(resp.content), took)  # counted, and charged to the caller
            location = resp.headers.get("location")
            if resp.status_code not in REDIRECT_STATUSES or not location:
                return resp
            target = request.url.join(location)
            here = request.url
            if (target.scheme, target.host, target.port) != (here.scheme, here.host, here.port):
                if strict_origin:
                    raise UpstreamBadAnswer(
                        f"upstream {method} {here.path}: redirected to another origin"
                        f" ({target.scheme}://{target.host}); the token is not sent there"
                    )
                return resp  # passed through as a redirect, never followed with the token
            body = request.content
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, body = "GET", b""
            hop = dict(headers)
            if body and "content-type" in request.headers:
                hop["Content-Type"] = request.headers["content-type"]
            request = self._http.build_request(method, target, content=body or None, headers=hop)
        raise UpstreamBadAnswer(
            f"upstream {method} {request.url.path}: more than {MAX_REDIRECTS} redirects"
        )

    # ---- internals ---------------------------------------------------------------------

    async def _object(self, path: str, token: str) -> dict[str, Any]:
        body = await self._call("GET", path, token, parse=msgspec.json.decode)
        return body if isinstance(body, dict) else {}  # only its success matters then

    async def _listing(self, path: str, page: int, per_page: int, token: str) -> Page:
        params = {"page": page, "per_page": per_page}
        body = await self._call("GET", path, token, params=params, parse=msgspec.json.decode)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise UpstreamBadAnswer(f"upstream GET {path}: no 'items' list in page {page}")
        total = body.get("total")
        return Page(
            [i for i in items if isinstance(i, dict)],
            total if isinstance(total, int) and not isinstance(total, bool) else None,
        )

    async def _call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        parse: Callable[[bytes], T],
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        no_data: T | None = None,
    ) -> T:
        return await self._retrying(method, path, token, parse, params, json, no_data)

    async def _retrying(
        self,
        method: str,
        path: str,
        token: str,
        parse: Callable[[bytes], T],
        params: Mapping[str, str | int] | None,
        json: Any,
        no_data: T | None,
    ) -> T:
        last: _Retryable | None = None
        for attempt in range(self.policy.retries + 1):
            if attempt:
                assert last is not None
                metering.retried()
                delay = self.policy.delay_s(attempt - 1, self._rand())
                if last.retry_after_s is not None:
                    delay = min(self.policy.backoff_cap_s, max(delay, last.retry_after_s))
                await self._sleep(delay)
            try:
                return await self._attempt(method, path, token, params, json, parse, no_data)
            except _Retryable as exc:
                last = exc
            if last.rate_limited and (last.retry_after_s or 0) > self.policy.backoff_cap_s:
                break  # upstream asks for longer than we wait inline: tell the caller now
        assert last is not None
        detail = f"upstream {method} {path}: {last.reason} after {attempt + 1} attempts"
        if last.rate_limited:
            # upstream's own Retry-After reaches the caller (a 503 with it), uncapped
            wait_s = last.retry_after_s or self.policy.backoff_cap_s
            raise UpstreamRateLimited(detail, retry_after_s=wait_s)
        raise (UpstreamTimeout if last.timeout else UpstreamUnavailable)(detail)

    async def _attempt(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        parse: Callable[[bytes], T],
        no_data: T | None,
    ) -> T:
        try:
            resp = await self._send(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}"},
                strict_origin=True,
            )
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no answer in {self.policy.timeout_s:g} s", timeout=True) from exc
        except httpx.TransportError as exc:
            raise _Retryable(type(exc).__name__) from exc
        if resp.status_code in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {resp.status_code}",
                retry_after_s=_retry_after(resp),
                rate_limited=resp.status_code == 429,
            )
        if 300 <= resp.status_code < 400:
            # not followed (an empty body is no answer), and not a failure of upstream:
            # for the paths tsgate builds, a redirect means "no such thing here"
            raise NotFound(f"upstream redirected {path} (HTTP {resp.status_code})")
        if resp.status_code >= 400:
            message = _message(resp)
            if resp.status_code == 404 and no_data is not None and NO_DATA in message.lower():
                return no_data  # upstream's way of saying "an empty range"
            raise upstream_error(resp.status_code, message, path)
        if resp.status_code >= 300 or not resp.content or not _is_json(resp):
            kind = resp.headers.get("content-type") or "no content type"
            raise UpstreamBadAnswer(
                f"upstream {method} {path}: HTTP {resp.status_code} with"
                f" {len(resp.content)} bytes of {kind}, not JSON"
            )
        try:
            return parse(resp.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # a truncated or garbled body: retry, never hand back a short answer
            raise _Retryable(f"broken body ({len(resp.content)} bytes)") from exc


def _unbind(resp: httpx.Response) -> None:
    """Break the reference cycle httpx makes between a response and its stream (the stream
    holds the response to set its ``elapsed`` when closed; encode/httpx#3733), once the body
    is read and the stream closed. Otherwise every answer, body included, outlives its last
    use until the cyclic collector finds it: 10 MiB more at the peak of a cold 50-point
    year with the collector's default thresholds, 270 MiB more with a tenth as many
    collections, and every full collection walked them all."""
    if resp.is_closed:
        resp.stream = httpx.ByteStream(b"")


def _is_json(resp: httpx.Response) -> bool:
    kind = str(resp.headers.get("content-type", "application/json")).split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _series(body: DataBody, path: str) -> dict[str, Series]:
    try:
        return body.series()
    except ValueError as exc:
        # upstream is alive and answered nonsense: not retried, not the caller's fault
        detail = f"upstream {path}: a sample time is not ISO 8601 ({str(exc)[:120]})"
        raise UpstreamBadAnswer(detail) from exc


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or f"HTTP {resp.status_code}"
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return str(body)[:200]


class AceClient(GuardedUpstream):
    """The ACE client tsgate reads with: :class:`AceApi` inside the one wrapper."""

    def __init__(
        self,
        base_url: str,
        policy: ClientPolicy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        policy = policy or ClientPolicy()
        costs = RequestCosts()
        api = AceApi(base_url, policy, transport=transport, sleep=sleep, rand=rand, costs=costs)
        super().__init__(
            api,
            breaker or CircuitBreaker(policy.breaker_failures, policy.breaker_reset_s),
            costs=costs,
        )
        self.policy = policy
