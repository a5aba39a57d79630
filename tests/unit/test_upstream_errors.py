"""One translation of upstream's refusals, for the ACE client and the pass-through alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsgate.api.problems import status_of
from tsgate.errors import BadParameter, Forbidden, NotFound, Unauthorized, UpstreamUnavailable
from tsgate.upstream.base import upstream_error


@pytest.mark.parametrize(
    ("status", "kind", "seen"),
    [
        (401, Unauthorized, 401),
        (403, Forbidden, 403),
        (404, NotFound, 404),
        (400, BadParameter, 400),
        (422, BadParameter, 400),
        (500, UpstreamUnavailable, 502),
        (502, UpstreamUnavailable, 502),
        (418, UpstreamUnavailable, 502),
    ],
)
def test_each_refusal_is_the_callers_or_upstreams(status: int, kind: type, seen: int) -> None:
    error = upstream_error(status, "no such thing", "/sites/x")
    assert type(error) is kind and status_of(error)[0] == seen
    assert error.upstream_message == "no such thing"  # what ACE clients read as message


@given(st.integers(100, 599).filter(lambda s: s not in (400, 401, 403, 404, 422)))
def test_any_other_status_is_upstream_failing_and_names_itself(status: int) -> None:
    error = upstream_error(status, "boom", "/sites/x/points")
    assert isinstance(error, UpstreamUnavailable) and status_of(error)[0] == 502
    assert f"HTTP {status}" in str(error) and "/sites/x/points" in str(error)
