"""The chart API: ``GET /api/timeseries`` (DESIGN §3): a chart answer inline, kept in
the response cache while its periods stay as they are, or a job when the range is too
large to fetch inline. The query is parsed in ``api/chartquery.py``; the wire layouts
are ``wire/chart.py``'s; ``GET /api/aggregations`` is ``api/aggregations.py``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api import responses
from tsgate.api.auth import token_of
from tsgate.api.chartquery import (
    ChartRequest,
    chart_gap_limits,
    chart_request,
    check_raw_reads,
    check_states,
    point_kinds,
    resolve_zone,
)
from tsgate.api.fastpath import FastAnswers
from tsgate.api.jobs import submitted_instead
from tsgate.api.limits import refuse_over_fetch_budget
from tsgate.api.negotiation import (
    choose_encoding,
    compressed,
    encode_body,
    msgpack_for,
    respond,
)
from tsgate.api.services import services_of
from tsgate.core import weighted
from tsgate.errors import UpstreamBadAnswer, UpstreamError
from tsgate.jobs.model import normalise
from tsgate.series.access import UNKNOWN_SITE
from tsgate.series.chart import (
    ChartQuery,
    ChartResult,
    answer_of,
    run_chart,
)
from tsgate.series.planning import changes_at
from tsgate.wire.ace import parse_bool
from tsgate.wire.chart import chart_body, describe_series

log = logging.getLogger(__name__)


async def timeseries(request: Request) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    parsed = chart_request(request)
    q, layout = parsed.query, parsed.layout
    msgpack = msgpack_for(parsed.format, request.headers.get("accept", ""))
    token = token_of(request, services.settings.upstream_token)
    q = await resolve_zone(request, q, token)
    check_raw_reads(request, q)
    timein = weighted.timein_state(q.agg) is not None
    # the prepared read checks the token on the site (per point on the unknown site)
    checked = q.site != UNKNOWN_SITE
    key = responses.ResponseKey(
        services.access.scope(token),
        q,
        layout,
        msgpack,
        choose_encoding(request.headers.get("accept-encoding", "")),
        await services.reader.generation(q.site),
    )
    hit = await responses.load(services.cache, key)
    if hit is not None and hit.until_ms and hit.until_ms <= services.clock_ms():
        hit = None  # its samples may have changed since (the clock may not be the cache's)
    if hit is not None:
        await _regrant(request, q, token)
        if timein:
            await check_states(request, q, token, access_checked=checked)
        _keep_fast(request, parsed, key, hit)
        return _from_cache(request, hit, started)
    # the read is prepared once (access, index rows, plan; a comparison's earlier span
    # with it): the states and the inline budget are checked on it, the chart reads
    # through it
    prepared = await services.reader.prepare(
        q.site, q.points, q.start_ms, q.end_ms, token=token, earlier_ms=q.compare_ms
    )
    if timein:
        await check_states(request, q, token, access_checked=checked)
    queued = await _too_large_for_inline(request, q, layout, token, prepared.missing_with_earlier)
    if queued is not None:
        return queued
    # what the answer asks of the catalog once the samples are in (kinds, gap limits),
    # made fresh while they are fetched rather than after
    fetching = checked and prepared.missing_with_earlier > 0
    ahead = services.catalog.refresh_ahead(q.site, token) if fetching else None
    try:
        result = await run_chart(
            services.reader,
            q,
            token=token,
            prepared=prepared,
            describe=lambda site, names: services.catalog.describe(
                site, names, token, services.kinds, access_checked=checked
            ),
            gap_limits=chart_gap_limits(request, token, access_checked=checked),
        )
        computed = time.perf_counter()
        body_obj = chart_body(answer_of(q, result), layout, msgpack=msgpack)
        await describe_answer(request, q, body_obj, token, access_checked=checked)
    finally:
        if ahead is not None:
            ahead.cancel()  # done by now, unless the chart failed first
    body, media_type = encode_body(body_obj, msgpack)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = _headers(request, q, result, started, computed, etag)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    response = compressed(request, body, media_type, headers=headers)
    if result.stats.cache_status != "STALE":
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        until_ms = await _response_until_ms(request, q, result)
        entry = responses.CachedResponse(bytes(response.body), media_type, kept, until_ms=until_ms)
        ttl_s = (until_ms - services.clock_ms()) / 1000
        if await responses.store(services.cache, key, entry, ttl_s):
            _keep_fast(request, parsed, key, entry)
    return response


async def _regrant(request: Request, q: ChartQuery, token: str) -> None:
    """Before a kept answer is served: the token's access to the site, asked of upstream
    again once its grant has run out (a revoked token gets its 401/403 here). If upstream
    cannot answer, the kept answer is served as before."""
    access = services_of(request).access
    if q.site == UNKNOWN_SITE or access.granted(access.scope(token), q.site):
        return
    try:
        await access.check(q.site, token)
    except (UpstreamError, UpstreamBadAnswer) as exc:
        log.info("access of a kept answer not renewed (%s): served from the cache", exc)


def _keep_fast(
    request: Request,
    parsed: ChartRequest,
    key: responses.ResponseKey,
    entry: responses.CachedResponse,
) -> None:
    """The answer also kept ready to send, for :mod:`tsgate.api.fastpath`."""
    answers: FastAnswers | None = getattr(request.state, "fast_answers", None)
    if answers is not None and parsed.query.tz != "site" and request.method == "GET":
        answers.keep(request.scope, services_of(request), key.query.site, key.generation, entry)


async def describe_answer(
    request: Request,
    q: ChartQuery,
    body: dict[str, Any],
    token: str,
    *,
    access_checked: bool = False,
) -> None:
    """Each series' point ``kind`` and sampling ``mode``, from the site's catalog (else
    from the point's name), so a client knows what to draw as steps."""
    describe_series(body, await point_kinds(request, q, token, access_checked=access_checked))


# headers that describe the answer itself, not how this request got it
_KEPT_HEADERS = {"etag", "cache-control", "x-data-samples", "content-encoding", "vary"}


def _from_cache(request: Request, hit: responses.CachedResponse, started: float) -> Response:
    elapsed_ms = (time.perf_counter() - started) * 1000
    headers = {
        **hit.headers,
        "X-Cache-Status": "HIT",
        "X-Cache-Source": "MEMORY",
        "X-Processing-Time": f"{elapsed_ms:.2f}",
        "Server-Timing": f"cache;dur={elapsed_ms:.2f}",
    }
    if hit.headers.get("etag", "\0") in request.headers.get("if-none-match", ""):
        headers.pop("content-encoding", None)
        return Response(status_code=304, headers=headers)
    return Response(hit.body, 200, headers=headers, media_type=hit.media_type)


async def _response_until_ms(request: Request, q: ChartQuery, result: ChartResult) -> int:
    """Until when the answer may be kept: never past the token's access grant it was
    served under, at most an hour; a repair of data behind a kept answer moves the site's
    generation, so it is not served. An answer with periods not yet final is kept until
    their samples could change (:func:`~tsgate.series.planning.changes_at`): the next
    re-check of a provisional period, the open TTL of a tail or of a range still open."""
    services = services_of(request)
    reader = services.reader
    now = services.clock_ms()
    until = now + int(min(services.settings.access_ttl_s, 3600.0) * 1000)
    if result.stats.final:
        return until
    spans = [(q.start_ms, q.end_ms)]
    if q.compare_ms:
        spans.append((q.start_ms + q.compare_ms, q.end_ms + q.compare_ms))
    for start_ms, end_ms in spans:
        rows = await reader.rows(q.site, q.points, start_ms, end_ms)
        at = changes_at(q.points, rows, start_ms, end_ms, now, services.policy.open_ttl_ms)
        until = until if at is None else min(until, at)
    return until


def _headers(
    request: Request, q: ChartQuery, result: ChartResult, started: float, computed: float, etag: str
) -> dict[str, str]:
    services = services_of(request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    # responses depend on the caller's token: private; immutable only once every sample
    # behind the answer is final (a provisional day may still receive a late backlog)
    if result.stats.cache_status == "STALE":
        cache_control = "no-store"  # served while upstream is down: not the real answer
    elif result.stats.final:
        cache_control = "private, max-age=31536000, immutable"
    else:
        cache_control = f"private, max-age={max(1, services.policy.open_ttl_ms // 1000)}"
    return {
        "X-Cache-Status": result.stats.cache_status,
        "X-Cache-Source": result.stats.cache_source,
        "X-Processing-Time": f"{elapsed_ms:.2f}",
        "X-Data-Samples": str(result.total_samples),
        "Server-Timing": f"compute;dur={(computed - started) * 1000:.2f}, "
        f"total;dur={elapsed_ms:.2f}",
        "ETag": etag,
        "Cache-Control": cache_control,
    }


async def _too_large_for_inline(
    request: Request, q: ChartQuery, layout: str, token: str, missing: int
) -> Response | None:
    """A query whose cold part (``missing`` samples, its comparison's included) is too
    big to fetch inline becomes a job: 202 + Location, or 413 with suggestions when the
    client says it cannot wait (``async=false``)."""
    services = services_of(request)
    budget = services.settings.inline_fetch_samples
    if budget <= 0 or missing <= budget:
        return None
    if not parse_bool("async", request.query_params.get("async"), default=True):
        refuse_over_fetch_budget(
            services.settings,
            missing,
            hint="drop async=false to get a job (202), or ask for a shorter range",
        )
    job_request = normalise(
        kind="query",
        site=q.site,
        points=q.points,
        start_ms=q.start_ms,
        end_ms=q.end_ms,
        interval=q.interval,
        max_points=q.max_points,
        agg=q.agg,
        layout=layout,
        tz=q.tz,
        compare_ms=q.compare_ms,
    )
    body, headers = await submitted_instead(services, job_request, token, missing=missing)
    return respond(request, body, status=202, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/api/timeseries", timeseries, methods=["GET"]),
    ]
