"""Every answer equals upstream: the data-loss bugs of the delta cache, one test each.

Each test compares what tsgate serves with the simulator read directly (the truth),
through the real ACE client, SQLite and a local folder. Late visibility and gateway
backlogs are modelled by :class:`LateUpstream`, which hides samples from the reader the
way a real upstream does until they become visible.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.asgi import sim_client
from tests.clock import NOW, Clock
from tests.seaweedfs import SeaweedFS
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import OpenedServices, open_services

pytestmark = pytest.mark.anyio

SITE = "elm_school"


@dataclass
class Outage:
    points: set[str] | None  # None: every point
    start_ms: int
    end_ms: int
    released_ms: int  # when the backlog becomes visible upstream


@dataclass
class LateUpstream:
    """The real ACE client, with samples hidden until they are visible: ``delay_ms``
    after their time, and samples of an outage until its backlog is released."""

    inner: AceClient
    clock: Clock
    delay_ms: int = 0
    outages: list[Outage] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _visible(self, s: Series) -> Series:
        now = self.clock.ms
        keep = s.t_ms + self.delay_ms <= now
        for o in self.outages:
            if now < o.released_ms and (o.points is None or s.name in o.points):
                keep &= ~((s.t_ms >= o.start_ms) & (s.t_ms < o.end_ms))
        return Series(s.name, s.t_ms[keep], s.v[keep])

    async def points_series(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        found = await self.inner.points_series(names, start_ms, end_ms, token=token)
        return {n: self._visible(s) for n, s in found.items()}

    async def site_pages(
        self, site: str, start_ms: int, end_ms: int, **kw: Any
    ) -> AsyncIterator[dict[str, Series]]:
        async for page in self.inner.site_pages(site, start_ms, end_ms, **kw):
            yield {n: self._visible(s) for n, s in page.items()}


@dataclass
class Env:
    sim: Simulator
    services: OpenedServices
    clock: Clock
    upstream: LateUpstream
    root: Path

    def names(self, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:n]]

    async def read(self, names: Sequence[str], start: int, end: int) -> dict[str, Series]:
        found, _ = await self.services.reader.read(SITE, list(names), start, end, token="t")
        return found

    async def use_site_stream(self) -> None:
        """Load the site's catalog: reads of many points then take the site's stream."""
        await self.services.catalog.fresh(SITE, "t")

    async def truth(self, names: Sequence[str], start: int, end: int) -> dict[str, Series]:
        """What upstream holds now, read directly (nothing of tsgate's cache involved)."""
        found = await self.upstream.points_series(list(names), start, end, token="t")
        return {n: found.get(n, Series.empty(n)).crop(start, end) for n in names}


def assert_same(got: dict[str, Series], want: dict[str, Series]) -> None:
    for name, series in want.items():
        assert got[name].t_ms.tolist() == series.t_ms.tolist(), name
        assert np.array_equal(got[name].v, series.v, equal_nan=True), name


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    upstream = LateUpstream(sim_client(sim), clock)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/tsgate.db",
        objects_url=f"file://{tmp_path}/objects",
        maintenance_interval_s=0,
        recheck_interval_s=0,
        upstream_token="service-token",  # what re-checks run with
    )
    async with open_services(settings, upstream=upstream, clock_ms=clock) as services:  # type: ignore[arg-type]
        yield Env(sim, services, clock, upstream, tmp_path)


def t(text: str) -> int:
    return parse_time("t", text)


async def test_the_first_of_the_month_is_kept_when_a_whole_month_follows(env: Env) -> None:
    name = env.names(1)
    await env.read(name, t("2025-04-01T00:00:00"), t("2025-04-01T10:35:00"))
    got = await env.read(name, t("2025-04-01T00:00:00"), t("2025-05-01T00:00:00"))
    want = await env.truth(name, t("2025-04-01T00:00:00"), t("2025-05-01T00:00:00"))
    assert len(want[name[0]]) > 8000
    assert_same(got, want)


async def test_the_site_stream_never_narrows_what_a_point_holds(env: Env) -> None:
    names = env.names(45)  # enough points for the site's paginated stream
    day = t("2025-09-10T00:00:00")
    await env.use_site_stream()
    await env.read(names, day, day + 10 * MS_PER_HOUR)
    assert env.sim.stats.by_route["paginated"] > 0
    one = names[:1]
    whole = await env.read(one, day, day + MS_PER_DAY)
    await env.read(names, day + 9 * MS_PER_HOUR, day + 20 * MS_PER_HOUR)
    again = await env.read(one, day, day + MS_PER_DAY)
    assert_same(again, whole)
    assert_same(again, await env.truth(one, day, day + MS_PER_DAY))
    assert_same(
        await env.read(names, day, day + MS_PER_DAY), await env.truth(names, day, day + MS_PER_DAY)
    )


async def test_a_live_dashboard_sees_samples_that_became_visible_late(env: Env) -> None:
    env.upstream.delay_ms = 4 * MS_PER_MINUTE  # gateways upload in batches
    names = env.names(3)
    for _ in range(30):  # a 2 h chart refreshed every minute for half an hour
        got = await env.read(names, env.clock.ms - 2 * MS_PER_HOUR, env.clock.ms)
        want = await env.truth(names, env.clock.ms - 2 * MS_PER_HOUR, env.clock.ms)
        assert_same(got, want)
        env.clock.ms += MS_PER_MINUTE + 1_000


async def test_a_gateway_backlog_is_repaired_by_the_recheck(env: Env) -> None:
    names = env.names(4)
    start = t("2025-11-01T06:00:00")
    outage = Outage(set(names[:2]), start, start + 72 * MS_PER_HOUR, 0)
    end = outage.end_ms
    outage.released_ms = end + 6 * MS_PER_HOUR
    env.upstream.outages.append(outage)
    env.clock.ms = end + MS_PER_HOUR
    window = (start - MS_PER_DAY, end + MS_PER_DAY // 2)
    first = await env.read(names, *window)
    assert len(first[names[0]].crop(start, end)) == 0  # not visible yet
    rows = await env.services.reader.rows(SITE, names[:2], start, end)
    assert any(r.state == "provisional" for r in rows)
    # the backlog arrives; the next due re-check (from the maintenance pass) picks it up
    env.clock.ms = outage.released_ms + 1
    requests = env.sim.stats.requests
    env.clock.ms = end + 24 * MS_PER_HOUR + 1  # the +24 h step is due for the last day
    report = await env.services.maintenance.rechecks.run(env.clock.ms)  # type: ignore[union-attr]
    assert report.repaired > 0
    # at most one upstream request per affected point (no complete day is read again)
    assert env.sim.stats.requests - requests <= len(names[:2]) * 2
    got = await env.read(names, *window)
    assert_same(got, await env.truth(names, *window))
    assert len(got[names[0]].crop(start, end)) > 800


async def test_lost_objects_are_refetched_not_served_as_empty(env: Env) -> None:
    names = env.names(2)
    day = t("2025-10-01T00:00:00")
    want = await env.truth(names, day, day + 2 * MS_PER_DAY)
    await env.read(names, day, day + 2 * MS_PER_DAY)
    env.services.reader.store.forget(SITE)
    shutil.rmtree(env.root / "objects" / "chunks")
    got, stats = await env.services.reader.read(SITE, names, day, day + 2 * MS_PER_DAY, token="t")
    assert stats.healed > 0 and stats.cache_status != "HIT"
    assert_same(got, want)


@pytest.mark.s3
async def test_a_lost_s3_prefix_is_refetched_while_serving(seaweedfs: SeaweedFS) -> None:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    upstream = LateUpstream(sim_client(sim), clock)
    prefix = f"heal-{uuid.uuid4().hex}"
    conf = Settings(
        database_url="sqlite://",
        objects_url=seaweedfs.url(prefix),
        maintenance_interval_s=0,
        recheck_interval_s=0,
    )
    async with open_services(conf, upstream=upstream, clock_ms=clock) as services:  # type: ignore[arg-type]
        env = Env(sim, services, clock, upstream, Path("/nonexistent"))
        names = env.names(3)
        day = t("2025-10-01T00:00:00")
        want = await env.truth(names, day, day + 3 * MS_PER_DAY)
        assert_same(await env.read(names, day, day + 3 * MS_PER_DAY), want)
        # an S3 lifecycle rule (or an operator) empties the chunk prefix while serving
        keys = [o.key async for o in services.objects.list("chunks/")]
        assert keys
        for key in keys:
            await services.objects.delete(key)
        services.reader.store.forget(SITE)
        got, stats = await services.reader.read(SITE, names, day, day + 3 * MS_PER_DAY, token="t")
        assert stats.healed == len(keys)
        assert_same(got, want)
        # and the objects are back: the next read is a hit again
        _, again = await services.reader.read(SITE, names, day, day + 3 * MS_PER_DAY, token="t")
        assert again.cache_status == "HIT" and again.healed == 0


async def test_a_corrupt_object_is_refetched_not_a_500(env: Env) -> None:
    names = env.names(1)
    day = t("2025-10-01T00:00:00")
    await env.read(names, day, day + MS_PER_DAY)
    env.services.reader.store.forget(SITE)
    (row,) = await env.services.reader.rows(SITE, names, day, day + MS_PER_DAY)
    path = env.root / "objects" / row.object_key
    path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    got = await env.read(names, day, day + MS_PER_DAY)
    assert_same(got, await env.truth(names, day, day + MS_PER_DAY))
    assert env.services.reader.store.counters.damaged == 1


async def test_a_point_the_site_stream_left_out_is_read_per_point(env: Env) -> None:
    site = env.sim.sites[2]
    idle = [p.name for p in site.points if not p.collect][:1]
    assert idle, "the campus has points that are not collecting"
    names = [*env.names(44), *idle]
    day = t("2025-10-05T00:00:00")
    await env.use_site_stream()
    got = await env.read(names, day, day + 6 * MS_PER_HOUR)
    assert env.sim.stats.by_route["paginated"] > 0
    assert_same(got, await env.truth(names, day, day + 6 * MS_PER_HOUR))


# ---- a property over random reads -------------------------------------------------------

_STEP = st.sampled_from([0, 20_000, MS_PER_MINUTE, 7 * MS_PER_MINUTE, MS_PER_HOUR, MS_PER_DAY])


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],  # reported unshrunk
)
@given(
    reads=st.lists(
        st.tuples(
            st.integers(-2, 40 * 24),  # window start, hours before "now" (or after it)
            st.integers(1, 9 * 24),  # window length, hours (may reach past "now")
            st.integers(0, 59),  # minutes off the hour
            st.sampled_from([1, 3, 45]),  # points: few, or enough for the site's stream
            _STEP,  # how far the clock moves before the read
        ),
        min_size=2,
        max_size=6,
    ),
    delay_ms=st.sampled_from([0, 90_000, 4 * MS_PER_MINUTE]),
)
async def test_any_sequence_of_reads_answers_what_upstream_holds(
    tmp_path_factory: pytest.TempPathFactory,
    reads: list[tuple[int, int, int, int, int]],
    delay_ms: int,
) -> None:
    root = tmp_path_factory.mktemp("prop")
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    upstream = LateUpstream(sim_client(sim), clock, delay_ms=delay_ms)
    conf = Settings(
        database_url=f"sqlite:///{root}/tsgate.db",
        objects_url=f"file://{root}/objects",
        maintenance_interval_s=0,
        recheck_interval_s=0,
    )
    async with open_services(conf, upstream=upstream, clock_ms=clock) as services:  # type: ignore[arg-type]
        env = Env(sim, services, clock, upstream, root)
        await env.use_site_stream()
        for back_h, length_h, minute, points, step in reads:
            clock.ms += step
            start = clock.ms - back_h * MS_PER_HOUR + minute * MS_PER_MINUTE
            end = start + length_h * MS_PER_HOUR
            names = env.names(points)
            got = await env.read(names, start, end)
            stop = min(end, clock.ms + 1)  # nothing exists after now
            if stop <= start:
                assert all(len(s) == 0 for s in got.values())
            else:
                assert_same(got, await env.truth(names, start, stop))


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(
    start_s=st.integers(0, 3 * 86_400),
    cuts_s=st.lists(st.integers(1, 86_400), min_size=1, max_size=4),
)
async def test_the_simulator_serves_a_window_split_anywhere_as_the_whole(
    start_s: int, cuts_s: list[int]
) -> None:
    """The truth itself must be consistent, or no differential test means anything."""
    sim = create_simulator(seed=1, now_ms=Clock(NOW))
    upstream = sim_client(sim)
    name = [p.name for p in sim.sites[2].collecting[:1]]
    start = t("2025-11-01T00:00:00") + start_s * 1000 + 37  # rarely on a slot edge
    edges = [start, *sorted({start + c * 1000 for c in cuts_s})]
    whole = (await upstream.points_series(name, edges[0], edges[-1], token="t"))[name[0]]
    parts = [
        (await upstream.points_series(name, a, b, token="t"))[name[0]]
        for a, b in itertools.pairwise(edges)
    ]
    assert np.concatenate([p.t_ms for p in parts]).tolist() == whole.t_ms.tolist()
