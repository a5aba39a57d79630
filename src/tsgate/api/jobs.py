"""The jobs API: submit a query or an export, watch it, fetch its result, cancel, retry.

A job belongs to the caller's scope (a keyed hash of its token); other callers get 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.bodies import json_object
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import BadParameter, NotFound
from tsgate.jobs.exports import MEDIA_TYPES
from tsgate.jobs.model import Job, JobKind, JobState, normalise
from tsgate.jobs.webhooks import check_addresses
from tsgate.object_store.base import ObjectStore
from tsgate.series.chart import INTERVALS
from tsgate.series.rollups import AGGREGATES
from tsgate.upstream.wire import parse_time

MAX_BODY_BYTES = 256 << 10
STREAM_CHUNK_BYTES = 1 << 20
EVENTS_POLL_S = 0.5


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


def _time(param: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw  # epoch milliseconds
    if isinstance(raw, str):
        return parse_time(param, raw)
    raise BadParameter(param, "must be an ISO 8601 time or epoch milliseconds")


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    raw = body.get(name)
    if raw is None or (isinstance(raw, int) and not isinstance(raw, bool)):
        return raw
    raise BadParameter(name, "must be an integer")


def _choice(body: dict[str, Any], name: str, allowed: Collection[str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise BadParameter(name, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


async def submit(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    body = await json_object(request, max_bytes=MAX_BODY_BYTES)
    points = body.get("points")
    if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
        raise BadParameter("points", "must be a list of point names")
    notify_url = body.get("notify_url")
    if notify_url is not None:
        if not isinstance(notify_url, str):
            raise BadParameter("notify_url", "must be a URL")
        await check_addresses(notify_url, allow_private=services.settings.webhook_allow_private)
    job_request = normalise(
        kind=str(body.get("kind", "")),
        site=str(body.get("site") or ""),
        points=points,
        start_ms=_time("start", body.get("start")),
        end_ms=_time("end", body.get("end")),
        format=body.get("format"),
        interval=_choice(body, "interval", INTERVALS),
        max_points=_optional_int(body, "max_points"),
        notify_url=notify_url,
        agg=_choice(body, "agg", AGGREGATES),
        layout=_choice(body, "layout", ("series", "columnar")),
    )
    job, _queued = await services.jobs.submit(job_request, token)
    status = 200 if job.state is JobState.COMPLETED else 202
    location = f"/api/jobs/{job.id}"
    return respond(request, job.to_json(), status=status, headers={"Location": location})


async def show(request: Request) -> Response:
    job = await services_of(request).jobs.get(request.path_params["job_id"], _token(request))
    return respond(request, job.to_json())


async def listing(request: Request) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in JobState}:
        raise BadParameter("status", f"{status!r} is not a job state")
    services = services_of(request)
    scope = services.jobs.scope_of(_token(request))
    found = await services.jobs.store.list_jobs(state=status, scope=scope)
    return respond(request, {"items": [j.to_json() for j in found], "total": len(found)})


async def cancel(request: Request) -> Response:
    job = await services_of(request).jobs.cancel(request.path_params["job_id"], _token(request))
    return respond(request, job.to_json())


async def retry(request: Request) -> Response:
    job = await services_of(request).jobs.retry(request.path_params["job_id"], _token(request))
    return respond(request, job.to_json(), status=202, headers={"Location": f"/api/jobs/{job.id}"})


async def result(request: Request) -> Response:
    services = services_of(request)
    job = await services.jobs.get(request.path_params["job_id"], _token(request))
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


async def _stream(objects: ObjectStore, key: str, size: int) -> AsyncIterator[bytes]:
    # ranged reads keep memory bounded whatever the export's size
    for start in range(0, size, STREAM_CHUNK_BYTES):
        chunk = await objects.get_range(key, start, min(size, start + STREAM_CHUNK_BYTES))
        if chunk is None:
            return
        yield chunk


async def events(request: Request) -> Response:
    services = services_of(request)
    job = await services.jobs.get(request.path_params["job_id"], _token(request))
    return StreamingResponse(
        _events(services.jobs.store.get, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(get: Any, job: Job) -> AsyncIterator[bytes]:
    last: tuple[Any, ...] | None = None
    current: Job | None = job
    while current is not None:
        seen = (current.state, current.progress, current.attempts)
        if seen != last:
            name = "end" if current.terminal else "progress"
            data = msgspec.json.encode(current.to_json()).decode()
            yield f"event: {name}\ndata: {data}\n\n".encode()
            last = seen
        if current.terminal:
            return
        await asyncio.sleep(EVENTS_POLL_S)
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
    ]
