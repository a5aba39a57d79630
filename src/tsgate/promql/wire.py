"""Prometheus's JSON shapes for query results: ``{resultType, result}``.

Sample values are strings as Prometheus writes them (``"1"``, ``"0.5"``, ``"NaN"``,
``"+Inf"``); timestamps are seconds as numbers with millisecond precision.
"""

from __future__ import annotations

import math
from itertools import chain, repeat
from typing import Any

import msgspec
import numpy as np

from tsgate.core.model import TimeArray, ValueArray
from tsgate.promql.engine import Matrix, Scalar, String, Value, Vector


def format_value(v: float) -> str:
    """A float as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` writes it."""
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if "e" in text:
        return np.format_float_positional(v, unique=True, trim="-")
    return text[:-2] if text.endswith(".0") else text


def format_values(values: ValueArray) -> list[bytes]:
    """``format_value`` of every value, as bytes. msgspec writes the shortest round-trip
    digits of a whole array in one call (about ten times faster than ``repr`` per value);
    whole numbers lose their ``.0``; NaN, infinities, -0 and exponent forms go one by one."""
    if not values.size:
        return []
    parts = msgspec.json.encode(values.tolist())[1:-1].split(b",")
    magnitude = np.abs(values)
    odd = ~np.isfinite(values) | (magnitude >= 1e16) | ((magnitude < 1e-4) & (values != 0))
    odd |= (values == 0) & np.signbit(values)
    whole = ~odd & (values == np.trunc(values))
    for i in np.flatnonzero(whole).tolist():
        parts[i] = parts[i][:-2]
    for i in np.flatnonzero(odd).tolist():
        parts[i] = format_value(float(values[i])).encode()
    return parts


def _stamps(times_ms: TimeArray) -> list[bytes]:
    """``[<seconds>,"`` per time: the shared head of every pair at that time."""
    seconds = (times_ms / 1000.0).tolist()
    return [f'[{r[:-2] if r.endswith(".0") else r},"'.encode() for r in map(repr, seconds)]


def _values(stamps: list[bytes], values: ValueArray) -> msgspec.Raw | None:
    """A series' ``[[t, "v"], …]`` as ready JSON (a year of hourly steps for 50 points is
    438,000 pairs: building them as Python lists would cost more than the evaluation)."""
    present = np.flatnonzero(~np.isnan(values))
    if not present.size:
        return None
    texts = format_values(values[present])
    heads = stamps if present.size == len(stamps) else [stamps[i] for i in present.tolist()]
    body = b"".join(chain.from_iterable(zip(heads, texts, repeat(b'"],'))))
    return msgspec.Raw(b"[" + body[:-1] + b"]")


def result(value: Value, times_ms: TimeArray, *, instant: bool) -> dict[str, Any]:
    """The ``data`` member of a query answer; instant vectors for instant queries."""
    times_s = (times_ms / 1000.0).tolist()
    stamps = _stamps(times_ms)
    if isinstance(value, String):
        return {"resultType": "string", "result": [times_s[0], value.value]}
    if isinstance(value, Scalar):
        if instant:
            return {"resultType": "scalar", "result": [times_s[0], format_value(value.values[0])]}
        return {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": _values(stamps, value.values) or []}],
        }
    if isinstance(value, Matrix):
        items = [
            {
                "metric": dict(labels),
                "values": [
                    [t / 1000.0, format_value(v)]
                    for t, v in zip(s.t_ms.tolist(), s.v.tolist(), strict=True)
                ],
            }
            for labels, s in sorted(value.items, key=lambda kv: kv[0])
            if len(s)
        ]
        return {"resultType": "matrix", "result": items}
    assert isinstance(value, Vector)
    ordered = sorted(value.items, key=lambda kv: kv[0])
    if instant:
        vector = [
            {"metric": dict(labels), "value": [times_s[0], format_value(float(values[0]))]}
            for labels, values in ordered
            if not math.isnan(values[0])
        ]
        return {"resultType": "vector", "result": vector}
    matrix = [
        {"metric": dict(labels), "values": pairs}
        for labels, values in ordered
        if (pairs := _values(stamps, values)) is not None
    ]
    return {"resultType": "matrix", "result": matrix}
