"""The jobs API: submit a query or an export, watch it, fetch its result, cancel, retry.

A job belongs to the caller's scope (a keyed hash of its token); other callers get 404.
Every route asks the same cached access check as data reads whether the caller's token
may read the job's site — when the job is created and again whenever it is read — so a
token upstream revokes loses its jobs and results within ``TSGATE_ACCESS_TTL_S``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Collection
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.bodies import json_object
from tsgate.api.chartquery import (
    aggregate_param,
    check_states_of,
    compare_param,
    default_interval,
    interval_param,
    refuse_raw_reads,
    zone_param,
)
from tsgate.api.limits import check_points, check_range, check_samples, check_time_ms
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.core import weighted
from tsgate.core.calendar import UTC
from tsgate.errors import BadParameter, Forbidden, NotFound, RequestError
from tsgate.jobs.exports import MEDIA_TYPES
from tsgate.jobs.handlers import chart_query, job_status, part_key, parts_ready, progressive
from tsgate.jobs.model import Job, JobKind, JobRequest, JobState, normalise
from tsgate.jobs.webhooks import check_addresses
from tsgate.object_store.base import ObjectStore
from tsgate.series.access import UNKNOWN_SITE, check_site_name
from tsgate.services import Services
from tsgate.settings import Settings
from tsgate.wire.ace import parse_time

MAX_BODY_BYTES = 256 << 10
STREAM_CHUNK_BYTES = 1 << 20
EVENTS_POLL_S = 0.5
PARTS_POLL_S = 0.1  # while a progressive job runs: a part is told of within this
_JOB_ID = re.compile(r"[0-9a-f]{24}")  # job ids are 12-byte hashes in hex


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


def _time(param: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return check_time_ms(param, raw)  # epoch milliseconds
    if isinstance(raw, str):
        return parse_time(param, raw)
    raise BadParameter(param, "must be an ISO 8601 time or epoch milliseconds")


def _optional_int(body: dict[str, Any], name: str, *, lo: int, hi: int) -> int | None:
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise BadParameter(name, "must be an integer")
    if not lo <= raw <= hi:
        raise BadParameter(name, f"{raw} is not between {lo} and {hi}")
    return raw


def _string(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadParameter(name, "must be a string")
    return value


def _choice(body: dict[str, Any], name: str, allowed: Collection[str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        raise BadParameter(name, f"{shown} is not one of {', '.join(sorted(allowed))}")
    return value


def _aggregate(body: dict[str, Any]) -> str | None:
    """``agg``: as the chart API takes it (a named aggregate, or ``timein:<state>``)."""
    value = body.get("agg")
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadParameter("agg", "must be a string")
    return aggregate_param(value)


def job_request_of(body: dict[str, Any], settings: Settings) -> JobRequest:
    """The body as a job request, checked with the chart API's limits; 4xx names the fault."""
    points = body.get("points")
    if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
        raise BadParameter("points", "must be a list of point names")
    check_points(settings, points, "points")
    if any(not p.isprintable() for p in points):
        raise BadParameter("points", "point names cannot hold control characters")
    start_ms, end_ms = _time("start", body.get("start")), _time("end", body.get("end"))
    if end_ms <= start_ms:
        raise BadParameter("end", "must be after start")
    check_range(settings, start_ms, end_ms, "end")
    site = _string(body, "site")
    if site:
        check_site_name(site)
    kind = _string(body, "kind")
    interval = _string(body, "interval") or None
    if interval is not None:
        interval_param(interval)
    max_points = _optional_int(body, "max_points", lo=4, hi=1_000_000)
    agg = _aggregate(body)
    # a query takes the chart API's parameters, checked and defaulted as it does them
    tz, compare_ms = UTC, 0
    if kind == JobKind.QUERY:
        tz = zone_param(_string(body, "tz") or None)
        compare_ms = compare_param(_string(body, "compare") or None, settings)
        if interval is None and agg is not None and max_points is None:
            interval = default_interval(None, has_agg=True, has_max_points=False)
    else:
        for name in ("tz", "compare"):
            if body.get(name) is not None:
                raise BadParameter(name, "is a query job's parameter (kind query), not an export's")
    return normalise(
        kind=kind,
        site=site,
        points=points,
        start_ms=start_ms,
        end_ms=end_ms,
        format=_string(body, "format", "json"),
        interval=interval,
        max_points=max_points,
        notify_url=body.get("notify_url"),
        agg=agg,
        layout=_choice(body, "layout", ("series", "columnar")),
        tz=tz,
        compare_ms=compare_ms,
    )


async def checked_query(services: Services, request: JobRequest, token: str) -> JobRequest:
    """A query job's request with ``tz=site`` resolved to the site's zone, refused (4xx)
    where the chart API would refuse the same parameters: more raw samples than one
    answer may carry (413), ``timein:<state>`` of an analog point (400)."""
    if request.kind is not JobKind.QUERY:
        return request
    if request.tz == "site":
        zone = await services.zones.zone_of(request.site, token)
        request = dataclasses.replace(request, tz=None if zone == UTC else zone)
    query = chart_query(request)
    # a query's result is one chart answer: the chart API's sample limits hold
    check_samples(services.settings, query)
    refuse_raw_reads(services.settings.max_inline_samples, query)
    if weighted.timein_state(query.agg) is not None:
        await check_states_of(services, query, token, access_checked=request.site != UNKNOWN_SITE)
    return request


async def check_job_access(services: Services, request: JobRequest, token: str) -> None:
    """The caller's token may (still) read what the job reads: asked of upstream, cached."""
    if request.site == UNKNOWN_SITE:
        for name in request.points:
            await services.access.check(request.site, token, point=name)
    else:
        await services.access.check(request.site, token)


async def submit(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    body = await json_object(request, max_bytes=MAX_BODY_BYTES)
    notify_url = body.get("notify_url")
    if notify_url is not None and not isinstance(notify_url, str):
        raise BadParameter("notify_url", "must be a URL")
    job_request = job_request_of(body, services.settings)
    # who may: upstream says (cached), before anything is stored or sliced
    await check_job_access(services, job_request, token)
    job_request = await checked_query(services, job_request, token)
    if notify_url is not None:
        await check_addresses(notify_url, allow_private=services.settings.webhook_allow_private)
    job, _queued = await services.jobs.submit(job_request, token)
    status = 200 if job.state is JobState.COMPLETED else 202
    location = f"/api/jobs/{job.id}"
    return respond(request, _body(job), status=status, headers={"Location": location})


def _body(job: Job) -> dict[str, Any]:
    """A job as the API shows it (:func:`~tsgate.jobs.handlers.job_status`)."""
    return job_status(job)


async def submitted_instead(
    services: Services, job_request: JobRequest, token: str, *, missing: int, detail: str = ""
) -> tuple[dict[str, Any], dict[str, str]]:
    """A read too large to fetch inline (``missing`` samples) submitted as a job: the
    body and headers of the 202 that points at it."""
    job, _ = await services.jobs.submit(job_request, token)
    status_url = f"/api/jobs/{job.id}"
    body: dict[str, Any] = {
        "jobId": job.id,
        "status": job.state.value,
        "statusUrl": status_url,
        "estimatedSamples": missing,
    }
    if detail:
        body["detail"] = detail
    return body, {"Location": status_url, "Retry-After": "2"}


async def _own_job(request: Request) -> tuple[Job, str]:
    """The caller's job named in the path, after its token's access is checked again."""
    services = services_of(request)
    token = _token(request)
    job_id = request.path_params["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise NotFound(f"no job {job_id[:60]!r}")
    job = await services.jobs.get(job_id, token)
    # a token revoked upstream (or refused the site) loses its jobs with its access
    await check_job_access(services, job.request, token)
    return job, token


async def show(request: Request) -> Response:
    job, _ = await _own_job(request)
    return respond(request, _body(job))


async def listing(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in JobState}:
        raise BadParameter("status", f"{status[:60]!r} is not a job state")
    services = services_of(request)
    token = _token(request)
    await services.access.validate(token)
    found = await services.jobs.listing(token, state=status)
    visible = [j for j in found if await _readable(services, j.request, token)]
    return respond(request, {"items": [_body(j) for j in visible], "total": len(visible)})


async def _readable(services: Services, request: JobRequest, token: str) -> bool:
    try:
        await check_job_access(services, request, token)
    except (Forbidden, NotFound):
        return False
    return True


async def cancel(request: Request) -> Response:
    job, token = await _own_job(request)
    job = await services_of(request).jobs.cancel(job.id, token)
    return respond(request, _body(job))


async def retry(request: Request) -> Response:
    job, token = await _own_job(request)
    job = await services_of(request).jobs.retry(job.id, token)
    return respond(request, _body(job), status=202, headers={"Location": f"/api/jobs/{job.id}"})


async def result(request: Request) -> Response:
    services = services_of(request)
    job, _ = await _own_job(request)
    if job.state is not JobState.COMPLETED or job.result_key is None:
        raise NotFound(f"job {job.id} has no result (status {job.state.value})")
    size = job.result_size or 0
    headers = {"Content-Length": str(size)}
    if job.request.kind is JobKind.EXPORT:
        filename = f"tsgate-{job.request.site}-{job.id}.{job.request.format}"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(
        _stream(services.objects, job.result_key, size),
        media_type=MEDIA_TYPES[job.request.format],
        headers=headers,
    )


async def part(request: Request) -> Response:
    """Part ``index`` (0: the newest) of a progressive query job's answer, the chart JSON
    of its buckets between two of its grid's boundaries (see docs/api.md)."""
    services = services_of(request)
    job, _ = await _own_job(request)
    raw = request.path_params["index"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        raise BadParameter("index", f"{raw[:60]!r} is not a part number")
    index = int(raw)
    ready = parts_ready(job)
    if index >= ready:
        raise NotFound(f"job {job.id} has {ready} parts ready, not part {index}")
    data = await services.objects.get(part_key(job.id, index))
    if data is None:
        raise NotFound(f"part {index} of job {job.id} is no longer kept")
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-store"})


async def _stream(objects: ObjectStore, key: str, size: int) -> AsyncIterator[bytes]:
    # ranged reads keep memory bounded whatever the export's size
    for start in range(0, size, STREAM_CHUNK_BYTES):
        chunk = await objects.get_range(key, start, min(size, start + STREAM_CHUNK_BYTES))
        if chunk is None:
            return
        yield chunk


async def events(request: Request) -> Response:
    services = services_of(request)
    job, _ = await _own_job(request)
    token = _token(request)

    async def current(job_id: str) -> Job | None:
        # a stream outlives grants: the token's access is checked again on every poll
        try:
            await check_job_access(services, job.request, token)
        except RequestError:
            return None  # access lost: the stream ends
        return await services.jobs.latest(job_id)

    return StreamingResponse(
        _events(current, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(get: Any, job: Job) -> AsyncIterator[bytes]:
    last: tuple[Any, ...] | None = None
    current: Job | None = job
    # a chart drawn part by part is told of each part soon after it is kept
    poll_s = PARTS_POLL_S if progressive(job.request) else EVENTS_POLL_S
    while current is not None:
        seen = (current.state, current.progress, current.attempts)
        if seen != last:
            name = "end" if current.terminal else "progress"
            data = msgspec.json.encode(_body(current)).decode()
            yield f"event: {name}\ndata: {data}\n\n".encode()
            last = seen
        if current.terminal:
            return
        await asyncio.sleep(poll_s)
        current = await get(job.id)


def routes() -> list[Route]:
    return [
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs", listing, methods=["GET"]),
        Route("/api/jobs/{job_id}", show, methods=["GET"]),
        Route("/api/jobs/{job_id}", cancel, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/result", result, methods=["GET"]),
        Route("/api/jobs/{job_id}/retry", retry, methods=["POST"]),
        Route("/api/jobs/{job_id}/events", events, methods=["GET"]),
        Route("/api/jobs/{job_id}/parts/{index}", part, methods=["GET"]),
    ]
