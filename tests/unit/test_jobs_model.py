"""Pure job logic: normalisation, ids, slicing, backoff, error classes, webhook checks."""

from __future__ import annotations

import itertools
import random

import httpx
import msgspec
import pytest

from tsgate.clock import format_utc
from tsgate.core.extents import month_floor
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.errors import BadParameter, NotFound, StorageError, UpstreamTimeout
from tsgate.jobs.handlers import (
    FIRST_PART_MIN_MS,
    FIRST_PART_MS,
    FIRST_PART_SAMPLES,
    first_part_ms,
    metadata,
    newest_first,
)
from tsgate.jobs.model import (
    Job,
    JobState,
    RetryPolicy,
    is_retryable,
    job_id,
    normalise,
    slices,
)
from tsgate.jobs.webhooks import (
    SIGNATURE_HEADER,
    Outcome,
    WebhookSender,
    check_addresses,
    sign,
)

T0 = 1_759_276_800_000  # 2025-10-01T00:00Z


def request(**changes: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "kind": "export",
        "site": "s",
        "points": ["b", "a", "a"],
        "start_ms": T0,
        "end_ms": T0 + MS_PER_DAY,
        "format": "CSV",
    } | changes
    return normalise(**values)  # type: ignore[arg-type]


def test_normalised_requests_hash_equally_per_scope() -> None:
    one, two = request(), request(points=["a", "b"], notify_url="https://example.com/h")
    assert one.points == ("a", "b") and one.format == "csv"
    assert job_id(one, "x") == job_id(two, "x") != job_id(one, "y")
    assert request(kind="query", format="parquet").format == "json"


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"kind": "x"}, "kind"),
        ({"site": "a/b"}, "site"),
        ({"points": []}, "points"),
        ({"end_ms": T0}, "end"),
        ({"format": "xls"}, "format"),
        ({"max_points": 0}, "max_points"),
    ],
)
def test_bad_requests_name_the_parameter(changes: dict[str, object], param: str) -> None:
    with pytest.raises(BadParameter) as caught:
        request(**changes)
    assert caught.value.param == param


@pytest.mark.parametrize(("points", "days"), [(1, 31), (100, 31), (101, 1)])
def test_slices_cover_the_range_on_calendar_boundaries(points: int, days: int) -> None:
    start, end = T0 + 3_600_000, T0 + 62 * MS_PER_DAY
    spans = list(slices(start, end, points=points))
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    boundary = month_floor if days == 31 else (lambda ms: ms - ms % MS_PER_DAY)
    assert all(boundary(e) == e for _, e in spans[:-1])
    assert max(e - s for s, e in spans) <= days * MS_PER_DAY


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=1, factor=3, cap_s=20)
    rng = random.Random(1)
    for attempt, ceiling in ((1, 1), (2, 3), (3, 9), (4, 20), (9, 20)):
        delays = {policy.delay_s(attempt, rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


def test_only_transient_errors_are_retried() -> None:
    assert is_retryable(UpstreamTimeout("slow")) and is_retryable(StorageError("db"))
    assert not is_retryable(NotFound("x")) and not is_retryable(ValueError("bug"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/h", "http://10.0.0.1/h", "http://169.254.169.254/", "http://[::1]/"]
)
async def test_webhooks_refuse_private_addresses(url: str) -> None:
    with pytest.raises(BadParameter, match="non-public"):
        await check_addresses(url, allow_private=False)
    await check_addresses(url, allow_private=True)


@pytest.mark.anyio
async def test_one_webhook_attempt_is_signed_and_judged() -> None:
    answers = iter([503, 429, 204, 404])
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return httpx.Response(next(answers))

    sender = WebhookSender(b"k", allow_private=True, transport=httpx.MockTransport(handler))
    job = Job("id1", request(notify_url="http://127.0.0.1/h"), "s", JobState.COMPLETED, 10)
    outcomes = [await sender.send(job) for _ in range(4)]
    # a 404 is the receiver's final word: sending again would not change it
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.SENT, Outcome.SENT]
    assert calls[-1].headers[SIGNATURE_HEADER] == sign(calls[-1].content, b"k")
    assert msgspec.json.decode(calls[-1].content)["jobId"] == "id1"
    refusing = WebhookSender(b"k", allow_private=False, transport=httpx.MockTransport(handler))
    assert await refusing.send(job) is Outcome.REFUSED and len(calls) == 4


def test_webhook_retries_back_off_then_give_up() -> None:
    sender = WebhookSender(b"k", retries=3, backoff_s=2.0)
    assert [sender.retry_in_s(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, None]


def test_export_metadata_names_its_range_in_rfc3339_utc() -> None:
    meta = metadata(request(start_ms=T0 + 5, end_ms=T0 + MS_PER_DAY), 7)
    assert meta["startTime"] == format_utc(T0 + 5) and meta["startTime"].endswith(".005Z")
    assert meta["endTime"] == format_utc(T0 + MS_PER_DAY) and meta["totalSamples"] == 7


@pytest.mark.parametrize("days", [1, 7, 40, 365])
def test_a_progressive_query_fetches_its_newest_week_first_then_months_newest_first(
    days: int,
) -> None:
    end = 1_764_590_400_000  # 2025-12-01T12:00Z: the newest month holds half a day
    start = end - days * MS_PER_DAY
    months = list(slices(start, end, points=3))
    got = newest_first(months, 7 * MS_PER_DAY)
    assert got[0] == (max(start, end - 7 * MS_PER_DAY), end)
    # they tile the range, newest first, and each later one lies within one month slice
    assert got[-1][0] == start and all(a < b for a, b in got)
    assert all(older[1] == newer[0] for newer, older in itertools.pairwise(got))
    assert all(any(ma <= a and b <= mb for ma, mb in months) for a, b in got[1:])


@pytest.mark.parametrize("points", [1, 3, 14, 15, 50, 100, 101, 500])
def test_the_first_part_holds_about_its_sample_budget_in_whole_hours(points: int) -> None:
    span = first_part_ms(points)
    assert span % MS_PER_HOUR == 0 and FIRST_PART_MIN_MS <= span <= FIRST_PART_MS
    samples = span // (5 * MS_PER_MINUTE) * points  # 5-minute points
    if FIRST_PART_MIN_MS < span < FIRST_PART_MS:
        # within an hour's samples of the budget, never over it
        assert FIRST_PART_SAMPLES - 12 * points < samples <= FIRST_PART_SAMPLES
    elif span == FIRST_PART_MS:
        assert samples <= FIRST_PART_SAMPLES  # a week of few points
    assert first_part_ms(points) >= first_part_ms(points + 1)
