"""User files: ``/api/files`` (upload, list, download, delete).

``POST /api/files`` takes ``multipart/form-data`` (one ``file`` part; ``site``, ``chart``
and ``name`` as fields or query parameters) or a raw body (``?name=&site=&chart=``). The
kind is sniffed from the bytes (``tsgate.files.content``); the bytes go to the object
store under ``files/<id>``, a key tsgate derives (never under the chunk cache's
``chunks/``, which operators may empty), the metadata to SQL.

Who reads a file: a file of a site (``site``) is readable by every token upstream lets
read that site; a saved chart's attachment (``chart``) by the chart's owner while its
token may read the chart's site; a file with neither by its owner alone. Every read asks
the same cached access check as data reads, so a revoked token loses its files within
``TSGATE_ACCESS_TTL_S``; another caller's file is a 404. Only the owner deletes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.negotiation import respond
from tsgate.api.problems import problem
from tsgate.api.services import services_of
from tsgate.errors import (
    BadParameter,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RequestTimedOut,
    StorageError,
    TooLarge,
    UnsupportedMediaType,
)
from tsgate.files.content import Kind, Refused, byte_range, check_claims, safe_name, sniff
from tsgate.files.content import requested_name as client_name
from tsgate.files.model import StoredFile
from tsgate.series.access import check_site_name
from tsgate.services import Services

FILE_PREFIX = "files/"
MULTIPART_SLACK_BYTES = 64 << 10  # the form's boundaries and fields around the file
STREAM_CHUNK_BYTES = 1 << 20
SPOOL_MEMORY_BYTES = 1 << 20
LIST_LIMIT = 500
_FILE_ID = re.compile(r"[0-9a-f]{24}")
_CHART_ID = re.compile(r"[A-Za-z0-9_-]{12}")


def upload_limit_bytes(max_file_bytes: int) -> int:
    """The request body an upload may send (the body limit of ``POST /api/files``)."""
    return max_file_bytes + MULTIPART_SLACK_BYTES


def object_key(file_id: str) -> str:
    return f"{FILE_PREFIX}{file_id[:2]}/{file_id}"


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


# -- upload --------------------------------------------------------------------------


class _Upload:
    """The spooled bytes of one upload and what the client said about them."""

    def __init__(self, file: IO[bytes], size: int, name: str | None, declared: str | None):
        self.file, self.size, self.name, self.declared = file, size, name, declared


async def _raw_body(request: Request, max_bytes: int) -> _Upload:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    try:
        async for piece in request.stream():
            size += len(piece)
            if size > max_bytes:
                raise TooLarge("max_file_bytes", f"the file is over the limit of {max_bytes} bytes")
            spool.write(piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    declared = request.headers.get("content-type")
    return _Upload(spool, size, request.query_params.get("name"), declared)


async def _multipart(request: Request, max_bytes: int, fields: dict[str, str]) -> _Upload:
    form = await request.form(max_files=1, max_fields=10, max_part_size=4096)
    parts = form.getlist("file")
    if len(parts) != 1 or not isinstance(parts[0], UploadFile):
        await form.close()
        raise BadParameter("file", "send exactly one file part named 'file'")
    part = parts[0]
    for key in ("site", "chart", "name"):
        value = form.get(key)
        if isinstance(value, str) and key not in fields:
            fields[key] = value
    size = part.size if part.size is not None else 0
    if size > max_bytes:
        await form.close()
        raise TooLarge("max_file_bytes", f"the file is over the limit of {max_bytes} bytes")
    name = fields.get("name") or part.filename
    # the parser closes its spooled file with the form: keep the file, drop the rest
    return _Upload(part.file, size, name, part.content_type)


async def _receive(request: Request, services: Services, fields: dict[str, str]) -> _Upload:
    max_bytes = services.settings.max_file_bytes
    timeout_s = services.settings.upload_timeout_s
    content_type = request.headers.get("content-type", "")
    try:
        async with asyncio.timeout(timeout_s):
            if content_type.lower().startswith("multipart/form-data"):
                return await _multipart(request, max_bytes, fields)
            return await _raw_body(request, max_bytes)
    except TimeoutError as exc:
        raise RequestTimedOut(f"the upload did not arrive within {timeout_s:g} s") from exc
    except ClientDisconnect as exc:
        raise BadParameter("body", "the client went away before the upload ended") from exc


def _inspect(upload: _Upload) -> tuple[Kind, str]:
    """The sniffed kind and the SHA-256 of the bytes (run in a thread: reads them all)."""
    kind = sniff(upload.file)
    check_claims(kind, client_name(upload.name), upload.declared)
    digest = hashlib.sha256()
    upload.file.seek(0)
    while piece := upload.file.read(STREAM_CHUNK_BYTES):
        digest.update(piece)
    upload.file.seek(0)
    return kind, digest.hexdigest()


async def _placement(
    services: Services, token: str, scope: str, site: str | None, chart: str | None
) -> tuple[str | None, str | None]:
    """``(site, chart)`` the file goes to, after the caller's access to them is checked."""
    if chart:
        if not _CHART_ID.fullmatch(chart):
            raise NotFound(f"no saved chart {chart[:60]!r}", param="chart")
        saved = await services.charts.get(scope, chart)
        if saved is None:
            raise NotFound(f"no saved chart {chart!r}", param="chart")
        chart_site = str(saved.config.get("site", ""))
        if site and site != chart_site:
            raise BadParameter("site", f"the chart {chart!r} is of site {chart_site!r}")
        await services.access.check(chart_site, token)
        return chart_site, chart
    if site:
        check_site_name(site)
        await services.access.check(site, token)
        return site, None
    return None, None


async def _check_quota(services: Services, scope: str, incoming_bytes: int) -> None:
    settings = services.settings
    count, used = await services.files.usage(scope)
    if 0 < settings.max_files_per_caller <= count:
        raise QuotaExceeded(
            "max_files_per_caller",
            f"this caller keeps {settings.max_files_per_caller} files, the most allowed;"
            " delete some first",
        )
    limit = settings.max_file_bytes_per_caller
    if limit > 0 and used + incoming_bytes > limit:
        raise QuotaExceeded(
            "max_file_bytes_per_caller",
            f"this caller's files would take {used + incoming_bytes} bytes; at most {limit}",
        )


async def upload(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    scope = services.access.scope(token)
    # who asks is known before a byte of the body is read
    await services.access.validate(token)
    await _check_quota(services, scope, 0)
    query = request.query_params
    fields = {k: query[k] for k in ("site", "chart", "name") if k in query}
    received = await _receive(request, services, fields)
    try:
        site, chart = await _placement(
            services, token, scope, fields.get("site") or None, fields.get("chart") or None
        )
        await _check_quota(services, scope, received.size)
        try:
            kind, sha256 = await run_in_threadpool(_inspect, received)
        except Refused as exc:
            raise UnsupportedMediaType(str(exc)) from exc
        file_id = secrets.token_hex(12)
        stored = StoredFile(
            id=file_id,
            scope=scope,
            site=site,
            chart_id=chart,
            name=safe_name(received.name, kind),
            media_type=kind.media_type,
            size_bytes=received.size,
            sha256=sha256,
            object_key=object_key(file_id),
            created_at_ms=services.clock_ms(),
        )
        await services.objects.put_file(stored.object_key, received.file)
    finally:
        received.file.close()
    try:
        await services.files.insert(stored)
    except BaseException:
        await services.objects.delete(stored.object_key)  # no object without its row
        raise
    location = f"/api/files/{file_id}"
    return respond(request, stored.to_json(), status=201, headers={"Location": location})


# -- reading -------------------------------------------------------------------------


async def _readable(services: Services, file: StoredFile, token: str, scope: str) -> bool:
    """Whether ``token`` may read ``file`` now; a revoked token raises 401."""
    try:
        if file.chart_id is not None:
            if file.scope != scope:
                return False
            if await services.charts.get(scope, file.chart_id) is None:
                return False  # the chart is gone: maintenance deletes its attachments
        if file.site is not None:
            await services.access.check(file.site, token)
            return True
        await services.access.validate(token)
        return file.scope == scope
    except (Forbidden, NotFound):
        return False


async def _visible_file(request: Request) -> tuple[StoredFile, str]:
    services = services_of(request)
    token = _token(request)
    scope = services.access.scope(token)
    file_id: str = request.path_params["file_id"]
    found = await services.files.get(file_id) if _FILE_ID.fullmatch(file_id) else None
    if found is None or not await _readable(services, found, token, scope):
        # an unknown id and a junk token look alike until upstream is asked
        await services.access.validate(token)
        raise NotFound(f"no file {file_id[:60]!r}", param="file_id")
    return found, scope


def _disposition(name: str) -> str:
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _headers(file: StoredFile) -> dict[str, str]:
    return {
        "ETag": file.etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(file.name),
        # served as what the bytes are, never run as a page
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        # access can be revoked: a cache may keep it, but must ask again each time
        "Cache-Control": "private, no-cache",
    }


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


async def download(request: Request) -> Response:
    services = services_of(request)
    file, _ = await _visible_file(request)
    headers = _headers(file)
    if _matches(request.headers.get("if-none-match"), file.etag):
        return Response(status_code=304, headers=headers)
    start, end, status = 0, file.size_bytes, 200
    asked = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if asked and (if_range is None or if_range.strip() == file.etag):
        try:
            chosen = byte_range(asked, file.size_bytes)
        except Refused as exc:
            refusal = problem(416, "Range not satisfiable", f"Range: {exc}", param="Range")
            refusal.headers["Content-Range"] = f"bytes */{file.size_bytes}"
            return refusal
        if chosen is not None:
            start, end = chosen
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size_bytes}"
    headers["Content-Length"] = str(end - start)
    first = await _piece(services, file, start, min(end, start + STREAM_CHUNK_BYTES))
    return StreamingResponse(
        _stream(services, file, first, start, end),
        status_code=status,
        media_type=file.media_type,
        headers=headers,
    )


async def _piece(services: Services, file: StoredFile, start: int, end: int) -> bytes:
    if start >= end:
        return b""
    data = await services.objects.get_range(file.object_key, start, end)
    if data is None:
        raise StorageError(f"objects: the bytes of file {file.id} are missing")
    return data


async def _stream(
    services: Services, file: StoredFile, first: bytes, start: int, end: int
) -> AsyncIterator[bytes]:
    if first:
        yield first
    # ranged reads keep memory bounded whatever the file's size
    for offset in range(start + len(first), end, STREAM_CHUNK_BYTES):
        yield await _piece(services, file, offset, min(end, offset + STREAM_CHUNK_BYTES))


async def show(request: Request) -> Response:
    """Metadata only: ``GET /api/files/{id}/meta``."""
    file, _ = await _visible_file(request)
    return respond(request, file.to_json())


async def listing(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    scope = services.access.scope(token)
    site, chart = request.query_params.get("site"), request.query_params.get("chart")
    if site and chart:
        raise BadParameter("chart", "give site or chart, not both")
    found: list[StoredFile]
    if chart:
        await _placement(services, token, scope, None, chart)
        found = await services.files.list(scope=scope, chart_id=chart, limit=LIST_LIMIT)
    elif site:
        await _placement(services, token, scope, site, None)
        found = await services.files.list(site=site, shared_only=True, limit=LIST_LIMIT)
    else:
        await services.access.validate(token)
        own = await services.files.list(scope=scope, limit=LIST_LIMIT)
        found = [f for f in own if await _readable(services, f, token, scope)]
    items: list[dict[str, Any]] = [f.to_json() for f in found]
    return respond(request, {"items": items, "total": len(items)})


async def delete(request: Request) -> Response:
    services = services_of(request)
    file, scope = await _visible_file(request)
    if file.scope != scope:
        raise NotFound(f"no file {file.id!r} of this caller", param="file_id")
    if not await services.files.delete(file.id):
        raise NotFound(f"no file {file.id!r}", param="file_id")
    await services.objects.delete(file.object_key)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/files", upload, methods=["POST"]),
        Route("/api/files", listing, methods=["GET"]),
        Route("/api/files/{file_id}", download, methods=["GET"]),
        Route("/api/files/{file_id}/meta", show, methods=["GET"]),
        Route("/api/files/{file_id}", delete, methods=["DELETE"]),
    ]
