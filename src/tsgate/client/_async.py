"""The asyncio client (``httpx.AsyncClient``): the same methods as ``Client``, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from tsgate.client import _core
from tsgate.client._progress import JobProgress


class AsyncClient:
    """``Client`` for asyncio code: every method is a coroutine."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        token: str | None = None,
        *,
        timeout_s: float = 120.0,
        poll_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.poll_s = poll_s
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _core.Call) -> httpx.Response:
        r = await self._http.request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )
        await r.aread()
        _core.raise_for(
            r.status_code,
            r.content,
            r.headers.get("content-type", ""),
            r.headers.get("retry-after"),
        )
        return r

    async def _get(self, path: str, **params: Any) -> Any:
        r = await self._send(_core.Call("GET", path, params))
        return _core.decode(r.content, r.headers.get("content-type", ""))

    # ---- catalog ------------------------------------------------------------------------

    async def sites(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self._get("/api/sites", page=page, per_page=100)
            out.extend(body.get("items", []))
            if page >= int(body.get("pages") or 1):
                return out
            page += 1

    async def points(
        self, site: str, q: str = "", tags: Iterable[str] = (), limit: int = 1000
    ) -> Any:
        """The site's points whose name contains ``q`` and that carry every tag."""
        body = await self._get(
            "/api/points/search", site=site, q=q, tags=",".join(tags), limit=limit
        )
        return _core.points_frame(body.get("items", []))

    # ---- data ---------------------------------------------------------------------------

    async def series(
        self,
        site: str,
        points: Sequence[str],
        start: Any,
        end: Any,
        *,
        interval: str | None = None,
        agg: str | None = None,
        max_points: int | None = None,
        tz: str | None = None,
    ) -> Any:
        """A DataFrame (UTC ``DatetimeIndex``, a column per point) of a chart query."""
        call = _core.series_call(site, points, start, end, interval, agg, max_points)
        r = await self._send(call)
        if r.status_code == 202:
            job = await self.wait(
                _core.decode(r.content, r.headers.get("content-type", ""))["jobId"]
            )
            r = await self._send(_core.Call("GET", job["resultUrl"]))
        body = _core.decode(r.content, r.headers.get("content-type", ""))
        return _core.series_frame(body, tz)

    async def frame(
        self,
        site: str,
        points: Sequence[str] | None = None,
        *,
        start: Any,
        end: Any,
        q: str | None = None,
        tags: Iterable[str] | None = None,
        interval: str = "5min",
        agg: str = "avg",
        fill: str = "none",
        tz: str | None = None,
    ) -> Any:
        """An aligned frame: a value and a ``coverage:<name>`` column per point."""
        call = _core.frame_call(site, points, q, tags, start, end, interval, agg, fill)
        r = await self._send(call)
        while r.status_code == 202:  # the data is being fetched: wait, then ask again
            await self.wait(_core.decode(r.content, r.headers.get("content-type", ""))["jobId"])
            r = await self._send(call)
        return _core.arrow_frame(r.content, tz)

    async def export(
        self,
        site: str,
        points: Sequence[str],
        start: Any,
        end: Any,
        *,
        format: str = "csv",
        path: str | Path | None = None,
        interval: str | None = None,
        progress: bool | None = None,
        console: Any = None,
    ) -> Path:
        """Run an export job with a progress bar and save its file (returns the path)."""
        created = await self._send(_core.export_call(site, points, start, end, format, interval))
        job = created.json()
        job = await self.wait(job["jobId"], progress=progress, console=console)
        target = Path(path or f"tsgate-{site}-{job['jobId']}.{format}")
        async with self._http.stream("GET", job["resultUrl"]) as r:
            if r.status_code >= 400:
                await r.aread()
                _core.raise_for(r.status_code, r.content, "", r.headers.get("retry-after"))
            async with await anyio.open_file(target, "wb") as out:
                async for chunk in r.aiter_bytes():
                    await out.write(chunk)
        return target

    # ---- jobs ---------------------------------------------------------------------------

    async def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = await self._get(f"/api/jobs/{job_id}")
        return job

    async def wait(
        self, job_id: str, *, progress: bool | None = False, console: Any = None
    ) -> dict[str, Any]:
        """Poll a job until it completes (``JobFailed`` if it fails, dies or is cancelled)."""
        with JobProgress(job_id, progress, console) as bar:
            while True:
                job = await self.job(job_id)
                bar.update(job)
                if _core.job_done(job):
                    return job
                await asyncio.sleep(self.poll_s)
