"""Prometheus's JSON shapes for query results: ``{resultType, result}``.

Sample values are strings as Prometheus writes them (``"1"``, ``"0.5"``, ``"NaN"``,
``"+Inf"``); timestamps are seconds as numbers with millisecond precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsgate.promql.engine import Matrix, Scalar, String, Value, Vector
from tsgate.series.model import TimeArray, ValueArray


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


def _values(times_s: list[float], values: ValueArray) -> list[list[Any]]:
    present = np.flatnonzero(~np.isnan(values))
    picked = values[present].tolist()
    return [[times_s[i], format_value(v)] for i, v in zip(present.tolist(), picked, strict=True)]


def result(value: Value, times_ms: TimeArray, *, instant: bool) -> dict[str, Any]:
    """The ``data`` member of a query answer; instant vectors for instant queries."""
    times_s = (times_ms / 1000.0).tolist()
    if isinstance(value, String):
        return {"resultType": "string", "result": [times_s[0], value.value]}
    if isinstance(value, Scalar):
        if instant:
            return {"resultType": "scalar", "result": [times_s[0], format_value(value.values[0])]}
        return {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": _values(times_s, value.values)}],
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
        if (pairs := _values(times_s, values))
    ]
    return {"resultType": "matrix", "result": matrix}
