"""The gap rule shared by chart gap bands and ``/api/quality``: each point's limit from
its kind, mode and heartbeat, and the gaps found (from raw samples, from buckets, from an
hour frame) equal to a brute-force walk over the samples with that limit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simtruth import walk_gaps
from tsgate.core import rollups
from tsgate.core.kinds import PointKinds
from tsgate.core.model import MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.core.quality import (
    GAP_MS,
    assess,
    bucket_gaps,
    gap_limit_ms,
    heartbeat_ms_of,
    holds,
    profile_of,
    sample_gaps,
)

CADENCE_MS = 5 * MS_PER_MINUTE


def test_each_kind_and_mode_has_its_limit() -> None:
    # a sampled analog point: three reporting intervals
    assert gap_limit_ms("analog", "sampled", CADENCE_MS) == GAP_MS
    assert gap_limit_ms("analog", "sampled", 60_000) == 3 * 60_000
    # on change: 1.5 heartbeats (hourly unless told), never under the floor
    for kind, mode in (("analog", "cov"), ("binary", "cov"), ("multistate", "cov")):
        assert gap_limit_ms(kind, mode, CADENCE_MS) == 90 * MS_PER_MINUTE
        assert gap_limit_ms(kind, mode, CADENCE_MS, heartbeat_ms=4 * MS_PER_HOUR) == (
            6 * MS_PER_HOUR
        )
        assert gap_limit_ms(kind, mode, CADENCE_MS, heartbeat_ms=60_000) == GAP_MS
        assert (
            gap_limit_ms(kind, mode, CADENCE_MS, heartbeat_ms=60_000, floor_ms=MS_PER_HOUR)
            == MS_PER_HOUR
        )
    assert holds("binary", "sampled") and not holds("analog", "sampled")


@pytest.mark.parametrize(
    ("tags", "want"),
    [
        ({"heartbeat": "900"}, 900_000),
        ({"heartbeat": 7200}, 7_200_000),
        ({"hisHeartbeat": "60.5"}, 60_500),
        ({"heartbeat": "-5"}, None),
        ({"heartbeat": "0"}, None),
        ({"heartbeat": "nan"}, None),
        ({"heartbeat": "soon"}, None),
        ({"heartbeat": True}, None),
        ({}, None),
    ],
)
def test_a_heartbeat_tag_is_read_or_ignored(tags: dict[str, object], want: int | None) -> None:
    assert heartbeat_ms_of({"name": "p", "kv_tags": tags}) == want
    assert heartbeat_ms_of({"name": "p", "kv_tags": "junk"}) is None


def test_a_catalog_point_profile_carries_the_rule() -> None:
    point = {
        "name": "ses/s/9000:1-9001/binaryValue/2",
        "collect_interval": 300,
        "collect_enabled": True,
        "kv_tags": {"heartbeat": "1800"},
    }
    profile = profile_of(point, PointKinds())
    assert profile.kind == "binary" and profile.heartbeat_ms == 1_800_000
    assert profile.gap_ms(profile.mode) == 45 * MS_PER_MINUTE
    analog = profile_of({"name": "x", "collect_interval": 60}, PointKinds())
    assert analog.gap_ms("sampled") == 3 * 60_000
    assert analog.gap_ms("cov", floor_ms=2 * MS_PER_HOUR) == 2 * MS_PER_HOUR


SPAN = (0, 12 * MS_PER_HOUR)
times = st.lists(st.integers(SPAN[0], SPAN[1] - 1), max_size=200, unique=True).map(sorted)
limits = st.sampled_from([GAP_MS, MS_PER_HOUR, 90 * MS_PER_MINUTE, 3 * MS_PER_HOUR])


@settings(max_examples=300, deadline=None)
@given(t=times, limit=limits, until_cut=st.integers(0, 3 * MS_PER_HOUR))
def test_found_gaps_equal_a_brute_force_walk(t: list[int], limit: int, until_cut: int) -> None:
    until = SPAN[1] - until_cut
    t = [x for x in t if x < until]
    span = (SPAN[0], until)
    s = Series("p", np.array(t, dtype=np.int64), np.ones(len(t)))
    want = walk_gaps(t, span, limit)
    # from raw samples: every gap
    assert sample_gaps(s, span, limit) == want
    # from buckets (hours here): every gap between two buckets, so every one longer
    hourly = rollups.bucketize(s, MS_PER_HOUR)
    between = [
        (a, b)
        for a, b in want
        if a == span[0] or b == until or a // MS_PER_HOUR != b // MS_PER_HOUR
    ]
    assert bucket_gaps(hourly, span, limit) == between
    # /api/quality's count and time: the same gaps as the hourly chart's
    q = assess(
        "p",
        hourly,
        span,
        until - 1,
        cadence_ms=CADENCE_MS,
        stale_after_ms=limit,
        gap_ms=limit,
        held=True,
    )
    assert (q.gaps, q.gap_ms) == (len(between), sum(b - a for a, b in between))
    if t:
        covered = 100.0 * (1.0 - q.gap_ms / (until - span[0]))
        assert q.coverage_pct == pytest.approx(covered, abs=1e-9)
        assert q.stale == (until - t[-1] > limit)
