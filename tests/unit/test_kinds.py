"""Point kinds and sampling modes from ACE point objects."""

from __future__ import annotations

from typing import Any

import pytest

from tsgate.errors import ConfigError
from tsgate.series.kinds import PointKinds, kind_of, mode_of


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


@pytest.mark.parametrize(
    ("tag", "kind"),
    [("binary", "binary"), ("Bool", "binary"), ("multistate", "multistate"), ("Number", "analog")],
)
def test_a_kind_tag_wins_over_the_object_type(tag: str, kind: str) -> None:
    point = {"bacnet_data": {"object_type": "analogInput"}, "kv_tags": {"kind": tag}}
    assert kind_of(point) == kind


def test_configured_kinds_win_over_tags_and_keep_or_infer_the_mode() -> None:
    kinds = PointKinds.parse(["a/b=c/analogValue/1=binary", "x=Analog:COV", "y=multistate"])
    binary = {"name": "a/b=c/analogValue/1", "bacnet_data": {"object_type": "analogValue"}}
    assert kinds.describe(binary) == ("binary", "cov")
    assert kinds.describe({"name": "x", "kv_tags": {"kind": "binary"}}) == ("analog", "cov")
    assert kinds.describe({"name": "y", "kv_tags": {"hisMode": "sampled"}}) == (
        "multistate",
        "sampled",
    )
    assert kinds.describe({"name": "z"}) == ("analog", "sampled")
    assert PointKinds().describe({"name": "p/binaryInput/3"}) == ("binary", "cov")


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("x", "point=kind"),
        ("=binary", "point=kind"),
        ("x=digital", "kind"),
        ("x=binary:lin", "mode"),
    ],
)
def test_bad_configured_kinds_are_refused_by_name(entry: str, named: str) -> None:
    with pytest.raises(ConfigError, match="TSGATE_POINT_KINDS") as raised:
        PointKinds.parse([entry])
    assert named in str(raised.value)
