"""Point kinds and sampling modes from ACE point objects."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.core.kinds import PointKinds, kind_of, mode_of, observed_mode, settled_mode
from tsgate.errors import ConfigError
from tsgate.upstream import visibility
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import parse_time


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


# ---- the sampling mode a reporting pattern shows -----------------------------------

_SIM = create_simulator(seed=2)
_LAB = _SIM.site_by_name["rhine_lab"]
_WEEK = (parse_time("s", "2026-05-04T00:00:00"), parse_time("e", "2026-05-11T00:00:00"))


def _truth(kind: str) -> tuple[np.ndarray, np.ndarray]:
    point = next(p for p in _LAB.collecting if p.kind == kind)
    t_us, v = visibility.samples(_LAB, point, *_WEEK, as_of_ms=_WEEK[1])
    return t_us // 1000, v


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        ("zone_temp_cov", "cov"),  # deadband reports: irregular, no repeats
        ("zone_temp", "sampled"),  # every 5 minutes, some lost
        ("flatline_temp", "sampled"),  # every 5 minutes, stuck on some days
        ("stale_rh", "sampled"),  # every 5 minutes, silent for hours on some days
    ],
)
def test_the_simulators_points_show_their_mode(kind: str, mode: str) -> None:
    t, v = _truth(kind)
    assert observed_mode(t, v) == mode
    # a day's worth tells it too
    day = t < _WEEK[0] + 86_400_000
    assert observed_mode(t[day], v[day]) == mode


def test_patterns_that_show_no_mode() -> None:
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.integers(1, 3_600_000, 500)).astype(np.int64)
    # irregular, but repeating values: a sampled point with lost samples, or a slow one
    assert observed_mode(t, np.round(rng.random(500) * 2)) is None
    assert observed_mode(t, rng.random(500)) == "cov"
    assert observed_mode(t[:19], rng.random(19)) is None  # too few to tell
    nan = np.full(500, np.nan)
    assert observed_mode(t, nan) is None
    same = np.zeros(500, dtype=np.int64)
    assert observed_mode(same, rng.random(500)) is None


def test_an_observed_mode_counts_only_for_analog_points_no_tag_describes() -> None:
    kinds = PointKinds.parse(["forced=analog:sampled"])
    assert kinds.describe({"name": "a"}, "cov") == ("analog", "cov")
    assert kinds.describe({"name": "a"}, None) == ("analog", "sampled")
    tagged = {"name": "a", "kv_tags": {"hisMode": "sampled"}}
    assert kinds.describe(tagged, "cov") == ("analog", "sampled")
    binary = {"name": "ses/s/d/binaryValue/1"}
    assert kinds.describe(binary, "sampled") == ("binary", "cov")
    assert kinds.describe({"name": "forced"}, "cov") == ("analog", "sampled")


WEEK_MS = 7 * 86_400_000


def _weeks(*modes: str | None) -> list[tuple[int, int, str]]:
    """Consecutive weeks from 0, each showing the mode given (None: neither)."""
    return [(i * WEEK_MS, (i + 1) * WEEK_MS, m) for i, m in enumerate(modes) if m is not None]


def test_a_settled_mode_changes_only_when_most_of_the_last_four_weeks_show_another() -> None:
    assert settled_mode([]) is None
    assert settled_mode(_weeks("sampled", "cov", "sampled", "sampled")) == "sampled"
    assert settled_mode(_weeks("sampled", "sampled", "sampled", "cov")) == "sampled"  # one week
    assert settled_mode(_weeks("sampled", "cov", "cov", "cov")) == "cov"
    assert settled_mode(_weeks("cov", "cov", "sampled", "sampled")) == "sampled"  # tie: latest
    assert settled_mode(_weeks("sampled", "sampled", None, None, "cov")) == "cov"
    # weeks before the four up to the latest period do not count
    assert settled_mode(_weeks(*["sampled"] * 10, "cov", "cov", "cov", "sampled")) == "cov"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(1, 31), st.sampled_from(["sampled", "cov"])),
        max_size=12,
        unique_by=lambda p: p[0],  # as stored: one period of a point per start
    ),
    st.randoms(use_true_random=False),
)
def test_a_settled_mode_is_the_time_majority_of_its_history_in_any_order(
    drawn: list[tuple[int, int, str]], rng: random.Random
) -> None:
    day = 86_400_000
    periods = [(s * day, (s + n) * day, m) for s, n, m in drawn]
    shuffled = list(periods)
    rng.shuffle(shuffled)
    got = settled_mode(periods)
    assert settled_mode(shuffled) == got
    if not periods:
        assert got is None
        return
    # brute force, day by day over the four weeks up to the latest end
    end = max(e for _, e, _ in periods) // day
    held = {"sampled": 0, "cov": 0}
    for d in range(end - 28, end):
        for s, e, m in periods:
            held[m] += int(s <= d * day < e)
    latest = max(periods, key=lambda p: (p[1], p[0]))[2]
    other = "cov" if latest == "sampled" else "sampled"
    assert got == (other if held[other] > held[latest] else latest)
