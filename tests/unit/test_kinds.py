"""Point kinds and sampling modes from ACE point objects."""

from __future__ import annotations

from typing import Any

import pytest

from tsgate.series.kinds import kind_of, mode_of


@pytest.mark.parametrize(
    ("point", "kind", "mode"),
    [
        ({"bacnet_data": {"object_type": "binaryOutput"}}, "binary", "cov"),
        ({"bacnet_data": {"object_type": "multiStateValue"}}, "multistate", "cov"),
        ({"bacnet_data": {"object_type": "analogInput"}}, "analog", "sampled"),
        ({"bacnet_data": {"object_type": "OBJECT_BINARY_INPUT"}}, "binary", "cov"),
        ({"name": "ses/site/8000:33-8033/binaryValue/12"}, "binary", "cov"),
        ({"name": "ses/site/8000:33-8033/multiStateInput/3"}, "multistate", "cov"),
        ({"name": "ses/site/8000:33-8033/analogValue/100"}, "analog", "sampled"),
        (
            {"name": "ses/site/n4/Ahu1.points.SupplyFanStatus", "marker_tags": ["binary"]},
            "binary",
            "cov",
        ),
        ({"name": "x", "marker_tags": ["Enum"]}, "multistate", "cov"),
        ({"name": "x", "marker_tags": ["cov", "temp"]}, "analog", "cov"),
        ({"name": "x", "kv_tags": {"hisMode": "cov"}}, "analog", "cov"),
        (
            {"name": "x", "kv_tags": {"hisMode": "sampled"}, "marker_tags": ["binary"]},
            "binary",
            "sampled",
        ),
        # the object type wins over a name that merely mentions one
        (
            {"name": "a/binaryValue/1", "bacnet_data": {"object_type": "analogValue"}},
            "analog",
            "sampled",
        ),
        ({}, "analog", "sampled"),
        (
            {"bacnet_data": "not a mapping", "marker_tags": "nor a list", "kv_tags": 3},
            "analog",
            "sampled",
        ),
    ],
)
def test_kind_and_mode(point: dict[str, Any], kind: str, mode: str) -> None:
    assert kind_of(point) == kind
    assert mode_of(point) == mode
