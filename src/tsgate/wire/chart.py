"""The wire encoding of chart answers (``/api/timeseries``, chart jobs, live streams);
a chart is worked out in ``series.chart``. The storage codec is separate: changing
these layouts never touches chunks.

- ``layout=series`` (default): ``series: [{name, data: [[ms, value], …]}]``.
- ``layout=columnar``, JSON: ``series: [{name, t: [ms, …], v: [value, …]}]``.
- ``layout=columnar``, MessagePack: ``series: [{name, n, t0, dtp, vp}]`` where ``dtp``
  holds the time deltas in ms as little-endian int32 (``n`` of them, ``dt[0] = 0``; time
  i is ``t0 + dt[0] + … + dt[i]``) and ``vp`` the values as little-endian float32 (NaN
  for gaps). A series whose gaps exceed int32 ms (24.8 days) carries ``tp``, the times
  as float64 ms, instead of ``dtp``; exact decimals travel as ``vs`` (a power of ten)
  and ``vdp`` (int32 steps of the values times ``vs``) instead of ``vp``.
  Each of these arrays is sent as byte planes (:func:`planes`): the first byte of every
  element, then the second byte of every element, and so on, which compresses better
  than the elements one after another. Earlier servers sent the same arrays element
  after element as ``dt``, ``v``, ``t`` and ``vd``: the names differ so that a decoder
  knowing only those never reads planes as elements.
In JSON, NaN values are ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsgate.samples import Series
from tsgate.wire.ace import format_time

Spans = Sequence[tuple[int, int]]


@dataclass(frozen=True)
class ChartAnswer:
    """What a chart query asked and found, as far as the answer shows it."""

    site: str
    points: tuple[str, ...]
    start_ms: int
    end_ms: int
    tz: str
    compare_ms: int
    aggregation: str
    interval: str
    total_samples: int
    compared_samples: int
    series: Sequence[Series]
    compared: Sequence[Series]  # the earlier range's, its times shifted onto this one
    provisional: Mapping[str, Spans]  # spans whose data may still change upstream
    gaps: Mapping[str, Spans]  # spans longer than the hole threshold without a sample


_INT32_MAX = 2**31 - 1
# which encodings these are: an answer kept in the response cache under another revision
# is not served (2: columnar MessagePack arrays in byte planes)
REVISION = 2


def chart_body(a: ChartAnswer, layout: str, *, msgpack: bool) -> dict[str, Any]:
    """The response object of a chart query; see docs/api.md for the layouts."""
    return {
        "metadata": {
            "siteId": a.site,
            "pointNames": list(a.points),
            "startTime": format_time(a.start_ms),
            "endTime": format_time(a.end_ms),
            "aggregation": a.aggregation,
            "interval": a.interval,
            "timeZone": a.tz,
            "layout": layout,
            "totalSamples": a.total_samples,
            "returnedPoints": sum(len(s) for s in a.series),
            # per point, the spans whose data may still change upstream (not final yet)
            "provisional": {
                name: [[s, e] for s, e in spans] for name, spans in a.provisional.items()
            },
            # per point, the spans longer than 15 minutes without a sample (chart bands)
            "gaps": {name: [[s, e] for s, e in spans] for name, spans in a.gaps.items()},
            **_compare_metadata(a),
        },
        "series": [series_object(s, layout, msgpack) for s in a.series]
        + [{**series_object(s, layout, msgpack), "offsetMs": a.compare_ms} for s in a.compared],
    }


def describe_series(body: dict[str, Any], kinds: dict[str, tuple[str, str]]) -> None:
    """Add each series' point ``kind`` and sampling ``mode`` to a :func:`chart_body`, so a
    client knows what to draw as steps."""
    for s in body["series"]:
        s["kind"], s["mode"] = kinds.get(s["name"], ("analog", "sampled"))


def _compare_metadata(a: ChartAnswer) -> dict[str, Any]:
    if not a.compare_ms:
        return {}
    return {"compare": {"offsetMs": a.compare_ms, "totalSamples": a.compared_samples}}


def series_object(s: Series, layout: str, msgpack: bool) -> dict[str, Any]:
    """One series of a chart answer in ``layout`` (packed bytes with ``msgpack``)."""
    if layout == "series":
        pairs = zip(s.t_ms.tolist(), s.v.tolist(), strict=True)
        return {"name": s.name, "data": [[t, v] for t, v in pairs]}
    if not msgpack:
        return {"name": s.name, "t": s.t_ms.tolist(), "v": s.v.tolist()}
    out: dict[str, Any] = {"name": s.name, "n": len(s), "t0": int(s.t_ms[0]) if len(s) else 0}
    scale = decimal_scale(s.v)
    if scale is not None:
        out["vs"] = scale
    deltas = np.diff(s.t_ms, prepend=s.t_ms[:1])
    if len(s) and int(deltas.max(initial=0)) > _INT32_MAX:
        out["tp"] = planes(s.t_ms.astype("<f8"))
    else:
        out["dtp"] = planes(deltas.astype("<i4"))
    if scale is None:
        out["vp"] = planes(s.v.astype("<f4"))
    else:
        # exact decimals compress better as integer steps than as float32 bit patterns
        scaled = np.rint(s.v * scale).astype(np.int64)
        out["vdp"] = planes(np.diff(scaled, prepend=0).astype("<i4"))
    return out


def planes(a: np.ndarray[Any, Any]) -> bytes:
    """The little-endian bytes of the 1-d array ``a`` as byte planes: byte b of element
    i is at ``b * len(a) + i`` (the bytes reshaped to ``(len(a), itemsize)`` and
    transposed, the "shuffle" of HDF5 and Blosc)."""
    little = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return little.view(np.uint8).reshape(len(little), little.itemsize).T.tobytes()


def decimal_scale(v: np.ndarray[Any, Any]) -> int | None:
    """The smallest 10**k (k ≤ 4) making every value an integer below 2**30 (to within a
    billionth of itself), if any."""
    if not v.size or not bool(np.all(np.isfinite(v))):
        return None
    for k in range(5):
        scale: int = 10**k
        scaled = v * scale
        rounded = np.rint(scaled)
        if float(np.max(np.abs(rounded))) >= 2**30:
            return None
        # relative only: a value near 0 (3e-10) is not the decimal 0
        if bool(np.all(np.abs(scaled - rounded) <= 1e-9 * np.abs(scaled))):
            return scale
    return None
