"""A Prometheus HTTP API subset under ``/prometheus/api/v1/`` (Grafana's built-in data source).

``query`` and ``query_range`` (GET or form POST), ``labels``, ``label/<name>/values``,
``series``, ``metadata``, ``status/buildinfo``, plus the empty ``query_exemplars``,
``rules`` and ``alerts`` Grafana asks for. Answers use Prometheus's envelope
``{status: success, data}`` and errors ``{status: error, errorType, error}`` (400
``bad_data``, 422 ``execution`` for limits, 404 ``not_found``, 503 ``unavailable``).

The data model and the evaluator are in ``tsgate.promql``; this module gives them a
source backed by the point catalog and the reader, so queries get the same access
checks, limits and caches as the chart API. The token comes from ``Authorization``
(``Bearer <token>``, or Basic auth whose password is the token) or ``X-ACE-Token``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hashlib
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
import numpy as np
import promql_parser as pp
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tsgate import __version__
from tsgate.api import responses
from tsgate.api.auth import token_of
from tsgate.api.negotiation import choose_encoding, compressed
from tsgate.api.problems import status_of
from tsgate.api.services import services_of
from tsgate.core.model import Series
from tsgate.core.rollups import Buckets, crop
from tsgate.errors import BadParameter, NotFound, TooLarge, TsgateError, UpstreamUnavailable
from tsgate.jobs.model import normalise
from tsgate.lru import LRU
from tsgate.promql import engine, labels, wire
from tsgate.promql.labels import Matcher, SeriesRef
from tsgate.series.chunkstore import COARSE_LEVELS_MS
from tsgate.series.reader import ReadStats
from tsgate.services import Services

MAX_POINTS_PER_SERIES = 11_000  # Prometheus's own cap on a range query's resolution
PROMQL_VERSION = "2.45.0"  # the Prometheus release whose PromQL the parser follows
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_JSON = "application/json"
_FAST_GZIP_BYTES = 1 << 20
_T = TypeVar("_T")
_HELP = "ACE IoT point samples; labels: site, point (the ACE name), unit, kind, tags"
_ERROR_TYPES = {400: "bad_data", 404: "not_found", 422: "execution", 504: "timeout"}


class _Warming(UpstreamUnavailable):
    """A query's cold part is too large to fetch inline: a job is fetching it."""

    retry_after_s = 5.0


# ---- the source: the catalog and the reader, for one caller ---------------------------


class ServiceSource:
    """``promql.engine.Source`` over the caller's sites, their catalogs and the reader."""

    levels: Mapping[str, int] = COARSE_LEVELS_MS

    def __init__(self, services: Services, token: str) -> None:
        self.services = services
        self.token = token
        self.stats = ReadStats()
        self.samples = 0

    async def sites(self) -> list[str]:
        scope = self.services.access.scope(self.token)
        now = self.services.clock_ms()
        memo = _memo_of(self.services)
        cached = memo.sites.get(scope)
        if cached is not None and cached[0] > now:
            return cached[1]
        names: list[str] = []
        for page in range(1, 101):
            items = (await self.services.upstream.sites_page(page, 1000, token=self.token)).items
            names.extend(str(i["name"]) for i in items if i.get("name"))
            if len(items) < 1000:
                break
        memo.sites.put(scope, (now + int(self.services.settings.access_ttl_s * 1000), names))
        return names

    async def catalog(self, site: str) -> list[SeriesRef]:
        await self.services.catalog.fresh(site, self.token)
        points = self.services.points
        stamp = await points.refreshed_at(site)
        memo = _memo_of(self.services)
        cached = memo.catalogs.get(site)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        _, items = await points.list(site, 0, 10_000_000)
        refs = [labels.series_of(site, p) for p in items if p.get("collect_enabled")]
        memo.catalogs.put(site, (stamp, refs))
        return refs

    async def select(self, matchers: Sequence[Matcher]) -> list[SeriesRef]:
        if not labels.matches_all({labels.NAME: labels.METRIC}, _on(matchers, labels.NAME)):
            return []
        found: list[SeriesRef] = []
        for site in labels.site_candidates(await self.sites(), matchers):
            found.extend(r for r in await self.catalog(site) if _matches(r, matchers))
        return found

    async def raw(self, refs: Sequence[SeriesRef], start_ms: int, end_ms: int) -> list[Series]:
        async def one(site: str, names: list[str]) -> dict[str, Series]:
            await self._warm_or_refuse(site, names, start_ms, end_ms)
            found, stats = await self.services.reader.read(
                site, names, start_ms, end_ms, token=self.token
            )
            self._add(stats, sum(len(s) for s in found.values()))
            return found

        return await self._per_site(refs, one)

    async def buckets(
        self, refs: Sequence[SeriesRef], level: str, start_ms: int, end_ms: int
    ) -> list[Buckets]:
        async def one(site: str, names: list[str]) -> dict[str, Buckets]:
            await self._warm_or_refuse(site, names, start_ms, end_ms)
            found, stats = await self.services.reader.read_rollups(
                site, names, level, start_ms, end_ms, token=self.token
            )
            cropped = {n: crop(b, start_ms, end_ms) for n, b in found.items()}
            self._add(stats, sum(int(b.count.sum()) for b in cropped.values()))
            return cropped

        return await self._per_site(refs, one)

    async def _per_site(
        self,
        refs: Sequence[SeriesRef],
        read: Callable[[str, list[str]], Awaitable[dict[str, _T]]],
    ) -> list[_T]:
        by_site: dict[str, list[str]] = {}
        for r in refs:
            by_site.setdefault(r.site, []).append(r.point)
        results = await asyncio.gather(*(read(s, names) for s, names in by_site.items()))
        found = dict(zip(by_site, results, strict=True))
        return [found[r.site][r.point] for r in refs]

    def _add(self, stats: ReadStats, samples: int) -> None:
        self.stats.needed_ms += stats.needed_ms
        self.stats.fetched_ms += stats.fetched_ms
        self.stats.upstream_requests += stats.upstream_requests
        self.stats.stale = self.stats.stale or stats.stale
        self.stats.sources |= stats.sources
        self.samples += samples

    async def _warm_or_refuse(
        self, site: str, names: list[str], start_ms: int, end_ms: int
    ) -> None:
        """As the chart API: a cold part too large to fetch inline becomes a job; the
        query is refused (503, ``Retry-After``) until the job has fetched it."""
        services = self.services
        budget = services.settings.inline_fetch_samples
        if budget <= 0:
            return
        missing = await services.reader.missing_samples(
            site, names, start_ms, end_ms, token=self.token
        )
        if missing <= budget:
            return
        request = normalise(
            kind="query",
            site=site,
            points=names,
            start_ms=start_ms,
            end_ms=end_ms,
            interval="1h",
            agg="avg",
        )
        job, _ = await services.jobs.submit(request, self.token)
        raise _Warming(
            f"about {missing:,} samples must first be fetched from upstream (at most {budget:,} "
            f"inline); job {job.id} is fetching them (/api/jobs/{job.id}) — retry when it is done"
        )


@dataclass
class _Memo:
    """What PromQL selectors resolve against, kept per set of services (each app's own
    stores: two apps in one process, as in tests, never see each other's catalogs)."""

    # scope -> (until ms, site names)
    sites: LRU[str, tuple[int, list[str]]] = field(default_factory=lambda: LRU.counted(10_000))
    # site -> (catalog refreshed at, its series)
    catalogs: LRU[str, tuple[int | None, list[SeriesRef]]] = field(
        default_factory=lambda: LRU.counted(1_000)
    )


# by the services' point rows (one per opened set of services; gone with them)
_MEMOS: weakref.WeakKeyDictionary[object, _Memo] = weakref.WeakKeyDictionary()


def _memo_of(services: Services) -> _Memo:
    memo = _MEMOS.get(services.points)
    if memo is None:
        memo = _MEMOS[services.points] = _Memo()
    return memo


def _on(matchers: Sequence[Matcher], name: str) -> list[Matcher]:
    return [m for m in matchers if m.name == name]


def _matches(ref: SeriesRef, matchers: Sequence[Matcher]) -> bool:
    return labels.matches_all(ref.label_map, matchers)


# ---- parameters -----------------------------------------------------------------------


async def _params(request: Request) -> dict[str, list[str]]:
    """The query string and, for a form POST, the body's fields (Prometheus reads both)."""
    out: dict[str, list[str]] = {}
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and kind not in ("", "application/x-www-form-urlencoded"):
            raise BadParameter("body", f"{kind} is not application/x-www-form-urlencoded")
        try:
            pairs.extend(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadParameter("body", "is not UTF-8 form data") from None
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def parse_time(name: str, text: str | None, default_ms: int | None = None) -> int:
    """Unix seconds (``1700000000.5``) or RFC 3339, as Prometheus accepts; epoch ms."""
    if text is None or text == "":
        if default_ms is not None:
            return default_ms
        raise BadParameter(
            name, f'invalid parameter "{name}": cannot parse "" to a valid timestamp'
        )
    try:
        seconds = float(text)
        if np.isfinite(seconds) and abs(seconds) < 1e13:
            return round(seconds * 1000)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                return round(parsed.timestamp() * 1000)
        except ValueError:
            pass
    raise BadParameter(
        name, f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
    )


def parse_step(text: str | None) -> int:
    if not text:
        raise BadParameter("step", 'invalid parameter "step": cannot parse "" to a valid duration')
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = pp.parse_duration(text).total_seconds()
        except ValueError:
            raise BadParameter(
                "step", f'invalid parameter "step": cannot parse "{text}" to a valid duration'
            ) from None
    if not np.isfinite(seconds) or seconds <= 0:
        raise BadParameter(
            "step",
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer",
        )
    return max(1, round(seconds * 1000))


def _limits(services: Services) -> engine.Limits:
    s = services.settings
    return engine.Limits(
        max_series=s.max_points_per_request,
        max_raw_samples=s.max_inline_samples,
        max_span_ms=s.max_range_days * 86_400_000 if s.max_range_days > 0 else 2**62,
    )


def caller_token(request: Request, fallback: str | None) -> str:
    """The ACE token: Basic auth's password (Grafana's Basic auth), else as everywhere."""
    header = request.headers.get("authorization", "").strip()
    if header[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise BadParameter("Authorization", "Basic credentials are not base64") from None
        if password or user:
            return password or user
    return token_of(request, fallback)


# ---- answers --------------------------------------------------------------------------


def _success(request: Request, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = msgspec.json.encode({"status": "success", "data": data})
    if (
        len(body) > _FAST_GZIP_BYTES
        and choose_encoding(request.headers.get("accept-encoding", "")) == "gzip"
    ):
        # Grafana (Go) asks for gzip only: on megabytes of digits level 1 is about four
        # times faster than 6 for a fifth more bytes
        out = {**(headers or {}), "Vary": "Accept, Accept-Encoding", "Content-Encoding": "gzip"}
        return Response(gzip.compress(body, compresslevel=1), 200, headers=out, media_type=_JSON)
    return compressed(request, body, _JSON, headers=headers)


def _error(exc: TsgateError) -> Response:
    status, _ = status_of(exc)
    if isinstance(exc, TooLarge):
        status = 422  # Prometheus answers 422 when a query would load too much
    elif isinstance(exc, _Warming):
        status = 503  # not a failure: the data is on its way
    error_type = _ERROR_TYPES.get(status, "unavailable" if status >= 500 else "bad_data")
    body = {"status": "error", "errorType": error_type, "error": exc.detail}
    headers = {}
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, int(retry + 0.999)))
    return Response(msgspec.json.encode(body), status, headers=headers, media_type=_JSON)


Handler = Callable[[Request], Awaitable[Response]]


def _enveloped(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except TsgateError as exc:
            return _error(exc)

    return endpoint


async def _evaluate(
    request: Request, query: str, start_ms: int, end_ms: int, step_ms: int, *, instant: bool
) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    expr = engine.parse(query)
    token = caller_token(request, services.settings.upstream_token)
    path = "query" if instant else "query_range"
    key = _cache_key(services, token, path, query, start_ms, end_ms, step_ms, request)
    hit = await responses.load(services.cache, key)
    if hit is not None:
        headers = {**hit.headers, "X-Cache-Status": "HIT", "X-Cache-Source": "MEMORY"}
        return Response(hit.body, 200, headers=headers, media_type=hit.media_type)
    source = ServiceSource(services, token)
    evaluator = engine.Evaluator(
        source, start_ms, end_ms, step_ms, _limits(services), instant=instant
    )
    value = await evaluator.run(expr)
    if not instant and isinstance(value, engine.String):
        raise BadParameter(
            "query",
            'invalid expression type "string" for range query, must be Scalar or instant Vector',
        )
    response = _success(request, wire.result(value, evaluator.times, instant=instant))
    stats = source.stats
    response.headers.update(
        {
            "X-Cache-Status": stats.cache_status if source.samples or stats.sources else "HIT",
            "X-Cache-Source": stats.cache_source,
            "X-Data-Samples": str(source.samples),
            "X-Processing-Time": f"{(time.perf_counter() - started) * 1000:.2f}",
        }
    )
    if not stats.stale:
        now = services.clock_ms()
        settled = evaluator.latest_ms <= now - services.policy.settle_ms
        ttl = min(
            services.settings.access_ttl_s, 3600.0 if settled else services.settings.open_ttl_s
        )
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT}
        entry = responses.CachedResponse(bytes(response.body), _JSON, kept)
        await responses.store(services.cache, key, entry, ttl)
    return response


_KEPT = {"content-encoding", "vary", "x-data-samples"}


def _cache_key(
    services: Services,
    token: str,
    path: str,
    query: str,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    request: Request,
) -> str:
    encoding = choose_encoding(request.headers.get("accept-encoding", ""))
    text = "\x1f".join(
        map(str, (services.access.scope(token), path, query, start_ms, end_ms, step_ms, encoding))
    )
    digest = hashlib.blake2b(text.encode(), digest_size=20).hexdigest()
    return responses.RESPONSES.key("prom:" + digest)


async def query(request: Request) -> Response:
    params = await _params(request)
    now = services_of(request).clock_ms()
    at = parse_time("time", _one(params, "time"), default_ms=now)
    return await _evaluate(request, _one(params, "query") or "", at, at, 1, instant=True)


async def query_range(request: Request) -> Response:
    params = await _params(request)
    start = parse_time("start", _one(params, "start"))
    end = parse_time("end", _one(params, "end"))
    step = parse_step(_one(params, "step"))
    if end < start:
        raise BadParameter(
            "end", 'invalid parameter "end": end timestamp must not be before start time'
        )
    if (end - start) // step + 1 > MAX_POINTS_PER_SERIES:
        raise BadParameter(
            "step",
            f"exceeded maximum resolution of {MAX_POINTS_PER_SERIES:,} points per timeseries. "
            "Try decreasing the query resolution (?step=XX)",
        )
    return await _evaluate(request, _one(params, "query") or "", start, end, step, instant=False)


# ---- the catalog: labels, label values, series, metadata -------------------------------


async def _matched(request: Request, params: Mapping[str, list[str]]) -> list[SeriesRef]:
    """Series matching any ``match[]`` selector, or every series when none is given."""
    services = services_of(request)
    source = ServiceSource(services, caller_token(request, services.settings.upstream_token))
    selectors = params.get("match[]") or []
    if not selectors:
        return await source.select([])
    found: dict[tuple[str, str], SeriesRef] = {}
    for text in selectors:
        for ref in await source.select(_selector_matchers(text)):
            found[(ref.site, ref.point)] = ref
    return list(found.values())


def _selector_matchers(text: str) -> list[Matcher]:
    try:
        expr = pp.parse(text)
    except ValueError as exc:
        raise BadParameter("match[]", f"cannot parse {text!r}: {exc}") from None
    if not isinstance(expr, pp.VectorSelector):
        raise BadParameter("match[]", f"{text!r} is not a series selector")
    return engine.matchers_of(expr)


def _limit(params: Mapping[str, list[str]]) -> int | None:
    text = _one(params, "limit")
    if not text:
        return None
    if not text.isdigit():
        raise BadParameter("limit", f'invalid parameter "limit": cannot parse "{text}"')
    return int(text) or None


def _check_times(params: Mapping[str, list[str]]) -> None:
    # the catalog does not change with time, but bad times are still refused
    for name in ("start", "end"):
        if _one(params, name):
            parse_time(name, _one(params, name))


async def label_names(request: Request) -> Response:
    params = await _params(request)
    _check_times(params)
    names = sorted({k for ref in await _matched(request, params) for k, _ in ref.labels})
    return _success(request, names[: _limit(params)])


async def label_values(request: Request) -> Response:
    params = await _params(request)
    _check_times(params)
    name = request.path_params["name"]
    if not _LABEL_NAME.fullmatch(name):
        raise BadParameter("name", f'invalid label name: "{name}"')
    values = sorted(
        {v for ref in await _matched(request, params) if (v := ref.label_map.get(name))}
    )
    return _success(request, values[: _limit(params)])


async def series(request: Request) -> Response:
    params = await _params(request)
    _check_times(params)
    if not params.get("match[]"):
        raise BadParameter("match[]", "no match[] parameter provided")
    found = sorted(await _matched(request, params), key=lambda r: r.labels)
    return _success(request, [r.label_map for r in found[: _limit(params)]])


async def metadata(request: Request) -> Response:
    params = await _params(request)
    metric = _one(params, "metric")
    entry = [{"type": "gauge", "help": _HELP, "unit": ""}]
    data = {labels.METRIC: entry} if metric in (None, "", labels.METRIC) else {}
    return _success(request, data)


async def buildinfo(request: Request) -> Response:
    return _success(
        request,
        {
            "version": PROMQL_VERSION,
            "revision": f"tsgate-{__version__}",
            "branch": "tsgate",
            "buildUser": "tsgate",
            "buildDate": "",
            "goVersion": "",
        },
    )


async def empty_list(request: Request) -> Response:
    await _params(request)
    return _success(request, [])


async def rules(request: Request) -> Response:
    return _success(request, {"groups": []})


async def alerts(request: Request) -> Response:
    return _success(request, {"alerts": []})


async def not_found(request: Request) -> Response:
    raise NotFound(f"no Prometheus API path {request.url.path}")


async def healthy(request: Request) -> Response:
    return PlainTextResponse("tsgate is Healthy.\n")


def routes() -> list[Route]:
    base = "/prometheus/api/v1"
    both = ["GET", "POST"]
    return [
        Route(f"{base}/query", _enveloped(query), methods=both),
        Route(f"{base}/query_range", _enveloped(query_range), methods=both),
        Route(f"{base}/labels", _enveloped(label_names), methods=both),
        Route(f"{base}/label/{{name}}/values", _enveloped(label_values), methods=["GET"]),
        Route(f"{base}/series", _enveloped(series), methods=both),
        Route(f"{base}/metadata", _enveloped(metadata), methods=["GET"]),
        Route(f"{base}/status/buildinfo", _enveloped(buildinfo), methods=["GET"]),
        Route(f"{base}/query_exemplars", _enveloped(empty_list), methods=both),
        Route(f"{base}/rules", _enveloped(rules), methods=["GET"]),
        Route(f"{base}/alerts", _enveloped(alerts), methods=["GET"]),
        Route(f"{base}/{{rest:path}}", _enveloped(not_found), methods=both),
        Route("/prometheus/", healthy, methods=["GET", "HEAD"]),
        Route("/prometheus/-/healthy", healthy, methods=["GET", "HEAD"]),
        Route("/prometheus/-/ready", healthy, methods=["GET", "HEAD"]),
    ]
