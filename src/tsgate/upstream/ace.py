"""The ACE API client on httpx: auth, bounded concurrency, retries, numpy parsing.

Retries use exponential backoff with full jitter on 429 (honouring ``Retry-After``),
5xx, connection errors, timeouts and broken bodies. Anything else is translated into
``tsgate.errors`` at once. A short or broken answer is never returned as data. Every
call (retries included) goes through one circuit breaker (``upstream/breaker.py``), so
an upstream that keeps failing is not asked again until its reset time has passed.

Redirects to the same origin are followed (at most ``MAX_REDIRECTS``), as a Flask-RESTX
upstream answers the undeclared slash spelling of a collection with a 308. A redirect
elsewhere is never followed with the token: the data reads refuse it, pass-through
relays it. A 2xx answer that is not JSON (or is empty) where JSON is needed is an
``UpstreamBadAnswer``: upstream is alive, so it is neither retried nor a breaker failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from tsgate.errors import (
    BadParameter,
    Forbidden,
    NotFound,
    RequestError,
    Unauthorized,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tsgate.series.model import MS_PER_DAY, Series, concat
from tsgate.settings import Settings
from tsgate.upstream import metering
from tsgate.upstream.base import Forwarded, UpstreamCounters
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.wire import PageBody, SamplesBody, format_time, samples_to_series

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
POINT_WINDOW_MS = 31 * MS_PER_DAY  # one per-point read never spans more than a month
BATCH_SPAN_MS = MS_PER_DAY  # spans up to this are read for many points in one POST
BATCH_POINTS = 100


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
    def from_settings(cls, s: Settings) -> ClientPolicy:
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
        """Full-jitter exponential backoff for the ``attempt``-th retry (0-based)."""
        base_s: float = self.backoff_s * (2.0**attempt)
        return min(self.backoff_cap_s, base_s) * (0.5 + rand / 2)


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


class AceClient:
    """An async client of one ACE API base URL (``…/api``)."""

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
        self.policy = policy or ClientPolicy()
        self.breaker = breaker or CircuitBreaker(
            self.policy.breaker_failures, self.policy.breaker_reset_s
        )
        self.base_url = base_url.rstrip("/")
        self.counters = UpstreamCounters()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.policy.timeout_s, connect=min(10.0, self.policy.timeout_s)),
            limits=httpx.Limits(max_connections=max(self.policy.concurrency * 2, 10)),
        )
        self._gate = asyncio.Semaphore(self.policy.concurrency)
        self._sleep = sleep
        self._rand = rand

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the seam --------------------------------------------------------------------

    async def get_json(
        self, path: str, *, token: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        return await self._call(
            "GET", path, token, params=params, parse=lambda b: msgspec.json.decode(b)
        )

    async def site_pages(
        self, site: str, start_ms: int, end_ms: int, *, token: str, raw: bool, page_size: int
    ) -> AsyncIterator[dict[str, Series]]:
        path = f"/sites/{quote(site, safe='')}/timeseries/paginated"
        params: dict[str, str | int] = {
            "start_time": format_time(start_ms),
            "end_time": format_time(end_ms),
            "page_size": page_size,
            "raw_data": "true" if raw else "false",
        }
        seen: set[str] = set()

        def ask(query: dict[str, str | int]) -> asyncio.Task[PageBody]:
            return asyncio.ensure_future(
                self._call("GET", path, token, params=query, parse=_parse_page, no_data=PageBody())
            )

        # the next page is asked for as soon as this one's cursor is known, and this one
        # decoded while upstream prepares it: one request at a time, none waiting on us
        pending: asyncio.Task[PageBody] | None = ask(params)
        try:
            while pending is not None:
                page = await pending
                pending = None
                self.counters.samples += len(page.point_samples)
                if page.has_more:
                    cursor = page.next_cursor
                    if not cursor or cursor in seen:
                        # an upstream that says "more" without a new cursor would loop or
                        # cut short
                        raise UpstreamUnavailable(
                            f"upstream paginated {site}: has_more without a usable cursor"
                        )
                    seen.add(cursor)
                    pending = ask({**params, "cursor": cursor})
                yield samples_to_series(page.point_samples)
        finally:
            if pending is not None:  # the reader stopped early (or failed): no page is left
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def points_series(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        unique = list(dict.fromkeys(names))
        if len(unique) > 1 and end_ms - start_ms <= BATCH_SPAN_MS:
            # short spans of many points (a dashboard's new minutes): one POST per batch
            batches = [unique[i : i + BATCH_POINTS] for i in range(0, len(unique), BATCH_POINTS)]
            found = await asyncio.gather(
                *(self._batch(b, start_ms, end_ms, token) for b in batches)
            )
            return {name: series for part in found for name, series in part.items()}
        windows = [
            (s, min(s + POINT_WINDOW_MS, end_ms)) for s in range(start_ms, end_ms, POINT_WINDOW_MS)
        ]
        jobs = [(name, w) for name in dict.fromkeys(names) for w in windows]
        parts = await asyncio.gather(*(self._point_window(n, s, e, token) for n, (s, e) in jobs))
        grouped: dict[str, list[Series]] = {name: [] for name in dict.fromkeys(names)}
        for (name, _), part in zip(jobs, parts, strict=True):
            grouped[name].append(part)
        return {name: concat(name, pieces) for name, pieces in grouped.items()}

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

        # the path is the caller's: its answers say nothing of upstream's health, so they
        # never count towards the breaker (which still fails fast while open)
        self.breaker.check()
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
            self.counters.requests += 1
            async with self._gate:
                resp = await self._http.send(request)
            self.counters.bytes += len(resp.content)
            metering.record(1, len(resp.content))  # charged to the caller it was for
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

    async def _batch(
        self, names: Sequence[str], start_ms: int, end_ms: int, token: str
    ) -> dict[str, Series]:
        params = {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}
        body = await self._call(
            "POST",
            "/points/get_timeseries",
            token,
            params=params,
            json={"points": list(names)},
            parse=_parse_samples,
            no_data=SamplesBody(),
        )
        self.counters.samples += len(body.point_samples)
        found = samples_to_series(body.point_samples)
        return {n: found.get(n, Series.empty(n)).crop(start_ms, end_ms) for n in names}

    async def _point_window(self, name: str, start_ms: int, end_ms: int, token: str) -> Series:
        path = f"/points/{quote(name, safe='')}/timeseries"
        params = {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}
        body = await self._call(
            "GET", path, token, params=params, parse=_parse_samples, no_data=SamplesBody()
        )
        self.counters.samples += len(body.point_samples)
        series = samples_to_series(body.point_samples).get(name, Series.empty(name))
        return series.crop(start_ms, end_ms)

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
        return await self.breaker.call(
            lambda: self._retrying(method, path, token, parse, params, json, no_data)
        )

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
                self.counters.retries += 1
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
            raise _translate(resp.status_code, message, path)
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


def _is_json(resp: httpx.Response) -> bool:
    kind = str(resp.headers.get("content-type", "application/json")).split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _parse_page(content: bytes) -> PageBody:
    return msgspec.json.decode(content, type=PageBody)


def _parse_samples(content: bytes) -> SamplesBody:
    return msgspec.json.decode(content, type=SamplesBody)


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


def _translate(status: int, message: str, path: str) -> UpstreamError | RequestError:
    error = _error_of(status, message, path)
    error.upstream_message = message
    return error


def _error_of(status: int, message: str, path: str) -> UpstreamError | RequestError:
    if status == 401:
        return Unauthorized(f"upstream rejected the token: {message}")
    if status == 403:
        return Forbidden(f"upstream refused access: {message}")
    if status == 404:
        return NotFound(f"upstream: {message}")
    if status in (400, 422):
        return BadParameter("upstream", message)
    return UpstreamUnavailable(f"upstream {path}: HTTP {status}: {message}")
