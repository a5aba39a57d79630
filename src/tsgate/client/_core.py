"""The client's pure half: requests to build and answers to decode (no I/O here), shared
by the sync ``Client`` and the ``AsyncClient``."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from tsgate.client.errors import JobFailed, from_problem

MSGPACK = "application/x-msgpack"
ARROW = "application/vnd.apache.arrow.stream"
TERMINAL_FAILURES = {"failed", "dead", "cancelled"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None


def pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("tsgate.client needs pandas: pip install 'tsgate[client]'") from exc
    return pd


def iso(when: datetime | str | int | float) -> str:
    """A time for the API: ISO 8601 UTC (naive means UTC), or epoch seconds."""
    if isinstance(when, str):
        return when
    if isinstance(when, int | float):
        return datetime.fromtimestamp(when, tz=_utc()).replace(tzinfo=None).isoformat()
    if when.tzinfo is not None:
        when = when.astimezone(_utc()).replace(tzinfo=None)
    return when.isoformat()


def _utc() -> Any:
    from datetime import UTC

    return UTC


def raise_for(status: int, content: bytes, content_type: str, retry_after: str | None) -> None:
    if status < 400:
        return
    try:
        body: Any = msgspec.json.decode(content) if content else {}
    except msgspec.DecodeError:
        body = content.decode(errors="replace")
    raise from_problem(status, body, retry_after)


def decode(content: bytes, content_type: str) -> Any:
    if content_type.startswith(MSGPACK):
        return msgspec.msgpack.decode(content)
    return msgspec.json.decode(content)


def job_done(job: Mapping[str, Any]) -> bool:
    """True once ``job`` completed; raises ``JobFailed`` if it ended otherwise."""
    state = job.get("status")
    if state in TERMINAL_FAILURES:
        raise JobFailed(dict(job))
    return state == "completed"


def series_call(
    site: str,
    points: Sequence[str],
    start: Any,
    end: Any,
    interval: str | None,
    agg: str | None,
    max_points: int | None,
) -> Call:
    params: dict[str, Any] = {
        "site": site,
        "points": ",".join(points),
        "start": iso(start),
        "end": iso(end),
        "layout": "columnar",
    }
    if interval:
        params["interval"] = interval
    if agg:
        params["agg"] = agg
    if max_points:
        params["max_points"] = max_points
    return Call("GET", "/api/timeseries", params, headers={"Accept": MSGPACK})


def columns(series: Mapping[str, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Times (epoch ms) and values of one series in the columnar layout, JSON or msgpack."""
    if "t" in series and not isinstance(series["t"], bytes | bytearray):
        t = np.asarray(series["t"], dtype=np.int64)
        v = np.array([np.nan if x is None else x for x in series["v"]], dtype=np.float64)
        return t, v
    n = int(series["n"])
    times = _column(series, "t", "<f8", n)
    if times is not None:
        t = times.astype(np.int64)
    else:
        deltas = _required(series, "dt", "<i4", n).astype(np.int64)
        t = int(series.get("t0", 0)) + np.cumsum(deltas)
    steps = _column(series, "vd", "<i4", n)
    if steps is not None:
        v = np.cumsum(steps.astype(np.int64)) / float(series["vs"])
    else:
        v = _required(series, "v", "<f4", n).astype(np.float64)
    return t, v


def _column(series: Mapping[str, Any], key: str, dtype: str, n: int) -> np.ndarray[Any, Any] | None:
    """The array ``key`` of a msgpack series: sent as byte planes under ``key + "p"``, or
    as plain little-endian elements under ``key`` (servers before the byte planes)."""
    size = np.dtype(dtype).itemsize
    packed = key + "p" in series
    name = key + "p" if packed else key
    raw = series.get(name)
    if not isinstance(raw, bytes | bytearray):
        return None
    if len(raw) != n * size:
        raise ValueError(f"{series.get('name')}: {name} has {len(raw)} bytes, not {n} × {size}")
    if not packed:
        return np.frombuffer(raw, dtype=dtype)
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, n).T.copy().view(dtype).ravel()


def _required(series: Mapping[str, Any], key: str, dtype: str, n: int) -> np.ndarray[Any, Any]:
    got = _column(series, key, dtype, n)
    if got is None:
        raise ValueError(f"{series.get('name')}: neither {key}p nor {key} in the series")
    return got


def series_frame(body: Mapping[str, Any], tz: str | None) -> Any:
    """A chart answer as a DataFrame: UTC ``DatetimeIndex``, one column per point."""
    pd = pandas()
    parts = []
    for s in body.get("series", []):
        t, v = columns(s)
        index = pd.DatetimeIndex(pd.to_datetime(t, unit="ms", utc=True), name="time")
        parts.append(pd.Series(v, index=index, name=s["name"]))
    if not parts:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"))
    frame = pd.concat(parts, axis=1).sort_index()
    frame.index.name = "time"
    return frame.tz_convert(tz) if tz else frame


def frame_call(
    site: str,
    points: Sequence[str] | None,
    q: str | None,
    tags: Iterable[str] | None,
    start: Any,
    end: Any,
    interval: str,
    agg: str,
    fill: str,
) -> Call:
    params: dict[str, Any] = {
        "site": site,
        "start": iso(start),
        "end": iso(end),
        "interval": interval,
        "agg": agg,
        "fill": fill,
        "format": "arrow",
    }
    if points:
        params["points"] = ",".join(points)
    if q is not None:
        params["q"] = q
    if tags:
        params["tags"] = ",".join(tags)
    return Call("GET", "/api/frame", params, headers={"Accept": ARROW})


def arrow_frame(content: bytes, tz: str | None) -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise ImportError("frames need pyarrow: pip install 'tsgate[client]'") from exc
    table = pa.ipc.open_stream(io.BytesIO(content)).read_all()
    frame = table.to_pandas().set_index("time")
    return frame.tz_convert(tz) if tz else frame


def export_call(
    site: str, points: Sequence[str], start: Any, end: Any, fmt: str, interval: str | None
) -> Call:
    body: dict[str, Any] = {
        "kind": "export",
        "format": fmt,
        "site": site,
        "points": list(points),
        "start": iso(start),
        "end": iso(end),
    }
    if interval:
        body["interval"] = interval
    return Call("POST", "/api/jobs", json=body)


def points_frame(items: Sequence[Mapping[str, Any]]) -> Any:
    pd = pandas()
    return pd.DataFrame(
        [
            {
                "name": p.get("name"),
                "unit": p.get("unit"),
                "tags": list(p.get("tags") or []),
                "collect_enabled": bool(p.get("collect_enabled")),
            }
            for p in items
        ],
        columns=["name", "unit", "tags", "collect_enabled"],
    )
