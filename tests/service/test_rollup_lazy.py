"""The 15-minute rollup level is built lazily: a write stores hourly and daily blobs
only; a month's 15-minute blob is built from its chunks when a read first needs it, and
from then on kept in step by every write. A build that a write overtook is never kept
older than the data: a write landing between the build's chunk read and its store, in
this process or another one sharing the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import postgres_schema
from tests.differential.harness import truth_buckets
from tsgate.core import extents, rollups
from tsgate.core.model import MS_PER_DAY, MS_PER_MINUTE, Series
from tsgate.database import Database, open_database
from tsgate.series.rollupcache import Period, RollupCache

pytestmark = pytest.mark.anyio
SITE, POINT = "elm_school", "p/one"
QUARTER = 15 * MS_PER_MINUTE
MAR = 1_772_323_200_000  # 2026-03-01T00:00Z
APR = extents.next_month(MAR)
MAY = extents.next_month(APR)
NOW = MAY + 40 * MS_PER_DAY


class Chunks:
    """What the chunks hold (the truth here): every sample of each point; a write
    replaces the samples of a period, then updates the rollups, as ``ChunkWriter`` does."""

    def __init__(self) -> None:
        self.samples: dict[str, Series] = {}
        self.lost: set[tuple[str, int]] = set()  # months with a chunk that cannot be read

    def of(self, point: str) -> Series:
        return self.samples.get(point, Series.empty(point))

    def replace(self, point: str, start: int, end: int, new: Series) -> Period:
        old = self.of(point)
        keep = (old.t_ms < start) | (old.t_ms >= end)
        new = new.crop(start, end)
        t = np.concatenate([old.t_ms[keep], new.t_ms])
        v = np.concatenate([old.v[keep], new.v])
        order = np.argsort(t, kind="stable")
        self.samples[point] = Series(point, t[order], v[order])
        return Period(point, start, end, self.of(point).crop(start, end))

    async def rebuild(self, site: str, months: Sequence[tuple[str, int]]) -> list[Period]:
        assert site == SITE
        out = []
        for p, m in months:
            end = extents.next_month(m)
            held = self.of(p).crop(m, end)
            if (p, m) in self.lost:  # its last days' chunk is gone: as ChunkObjects loads
                held = held.crop(m, end - 5 * MS_PER_DAY)
            out.append(Period(p, m, end, held, whole=(p, m) not in self.lost))
        return out


def samples(point: str, start: int, end: int, step: int, seed: int) -> Series:
    t = np.arange(start, end, step, dtype=np.int64)
    return Series(point, t, np.random.default_rng(seed).normal(20, 3, t.size))


async def write(
    cache: RollupCache, chunks: Chunks, point: str, start: int, end: int, seed: int, step: int
) -> None:
    period = chunks.replace(point, start, end, samples(point, start, end, step, seed))
    await cache.update(SITE, [period], NOW, rebuild=chunks.rebuild)


def assert_quarters(got: rollups.Buckets, series: Series, start: int, end: int) -> None:
    """``got`` holds exactly the 15-minute buckets of ``series`` in ``[start, end)``, by
    a brute-force reference (numpy over the samples); a rollup read answers the whole
    buckets that start in the range."""
    lo, hi = -(-start // QUARTER) * QUARTER, -(-end // QUARTER) * QUARTER
    part = series.crop(lo, hi)
    arrays = (part.t_ms, part.v)
    want_t, want_count = truth_buckets(arrays, QUARTER, "count", lo)
    assert got.start_ms.tolist() == want_t.tolist()
    assert got.count.tolist() == want_count.astype(np.int64).tolist()
    for agg, field in (("min", got.min), ("max", got.max)):
        np.testing.assert_array_equal(field, truth_buckets(arrays, QUARTER, agg, lo)[1])
    mean = got.sum / np.maximum(got.count, 1)
    np.testing.assert_allclose(mean, truth_buckets(arrays, QUARTER, "avg", lo)[1], rtol=1e-12)


async def stored_months(db: Database, level: str) -> list[int]:
    rows = await db.rollups.get(SITE, [POINT], level, MAR, MAY)
    return [r.period_start_ms for r in rows]


async def test_writes_store_no_15_minute_blob_until_a_read_builds_one(db: Database) -> None:
    cache, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    await write(cache, chunks, POINT, MAR, MAY, seed=1, step=5 * MS_PER_MINUTE)
    assert await stored_months(db, "1h") == [MAR, APR]
    assert await stored_months(db, "15m") == []  # written lazily
    # a read of March's quarters builds March's blob only
    lo, hi = MAR + 3 * MS_PER_DAY, MAR + 9 * MS_PER_DAY
    got = await cache.read(SITE, [POINT], "15m", lo, hi, rebuild=chunks.rebuild)
    assert_quarters(got[POINT], chunks.of(POINT), lo, hi)
    assert await stored_months(db, "15m") == [MAR]
    # later writes keep March's blob in step, and April stays hourly-only
    await write(cache, chunks, POINT, MAR + 5 * MS_PER_DAY, APR + MS_PER_DAY, 2, MS_PER_MINUTE)
    assert await stored_months(db, "15m") == [MAR]
    fresh = RollupCache(db.rollups, memory_bytes=1 << 24)  # no rebuild: only what is stored
    again = await fresh.read(SITE, [POINT], "15m", MAR, APR)
    assert_quarters(again[POINT], chunks.of(POINT), MAR, APR)
    # a month with samples but no built blob is absent without a way to build it
    assert not len((await fresh.read(SITE, [POINT], "15m", APR, MAY))[POINT])
    # an invalidation emptying days of both months empties them in both levels
    dropped = chunks.replace(POINT, MAR + 6 * MS_PER_DAY, APR + 2 * MS_PER_DAY, Series.empty(POINT))
    await cache.update(SITE, [dropped], NOW)
    assert await stored_months(db, "15m") == [MAR]
    assert_quarters(
        (await fresh.read(SITE, [POINT], "15m", MAR, APR))[POINT], chunks.of(POINT), MAR, APR
    )
    both = await cache.read(SITE, [POINT], "15m", MAR, MAY, rebuild=chunks.rebuild)
    assert_quarters(both[POINT], chunks.of(POINT), MAR, MAY)
    assert await stored_months(db, "15m") == [MAR, APR]


Hook = Callable[[], Awaitable[None]]


def interleaved(chunks: Chunks, between: Hook) -> Callable[..., Awaitable[list[Period]]]:
    """A rebuild that runs ``between`` after it read the chunks, before the build is
    stored: where a concurrent write can land."""

    async def rebuild(site: str, months: Sequence[tuple[str, int]]) -> list[Period]:
        periods = await chunks.rebuild(site, months)
        await between()
        return periods

    return rebuild


@pytest.mark.parametrize("processes", [1, 2], ids=["one process", "two processes"])
async def test_a_write_landing_between_the_chunk_read_and_the_store_is_not_lost(
    db: Database, processes: int
) -> None:
    """The whole write (chunks, then rollups) lands meanwhile: the build is not stored,
    and the next read builds from the new chunks."""
    reader, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    writer = reader if processes == 1 else RollupCache(db.rollups, memory_bytes=1 << 24)
    await write(writer, chunks, POINT, MAR, APR, seed=1, step=5 * MS_PER_MINUTE)
    before = chunks.of(POINT)

    async def late_upload() -> None:
        await write(writer, chunks, POINT, MAR + MS_PER_DAY, MAR + 2 * MS_PER_DAY, 3, MS_PER_MINUTE)

    got = await reader.read(
        SITE, [POINT], "15m", MAR, APR, rebuild=interleaved(chunks, late_upload)
    )
    assert_quarters(got[POINT], before, MAR, APR)  # what the chunks held when read
    assert await stored_months(db, "15m") == []  # but not kept: a write came after
    again = await reader.read(SITE, [POINT], "15m", MAR, APR, rebuild=chunks.rebuild)
    assert_quarters(again[POINT], chunks.of(POINT), MAR, APR)
    assert await stored_months(db, "15m") == [MAR]
    other = RollupCache(db.rollups, memory_bytes=1 << 24)
    assert_quarters(
        (await other.read(SITE, [POINT], "15m", MAR, APR))[POINT], chunks.of(POINT), MAR, APR
    )


@pytest.mark.parametrize("processes", [1, 2], ids=["one process", "two processes"])
async def test_a_write_whose_rollups_come_after_the_store_brings_the_build_in_step(
    db: Database, processes: int
) -> None:
    """The write's chunks land after the build read them, its rollup update after the
    build was stored: the write finds the built blob and rewrites its period."""
    reader, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    writer = reader if processes == 1 else RollupCache(db.rollups, memory_bytes=1 << 24)
    await write(writer, chunks, POINT, MAR, APR, seed=1, step=5 * MS_PER_MINUTE)
    pending: list[Period] = []

    async def chunks_land() -> None:
        start, end = MAR + 10 * MS_PER_DAY, MAR + 12 * MS_PER_DAY
        pending.append(chunks.replace(POINT, start, end, samples(POINT, start, end, 60_000, 4)))

    await reader.read(SITE, [POINT], "15m", MAR, APR, rebuild=interleaved(chunks, chunks_land))
    assert await stored_months(db, "15m") == [MAR]  # built from the chunks before the write
    await writer.update(SITE, pending, NOW)  # the write's rollups
    for cache in (reader, writer, RollupCache(db.rollups, memory_bytes=1 << 24)):
        got = await cache.read(SITE, [POINT], "15m", MAR, APR)
        assert_quarters(got[POINT], chunks.of(POINT), MAR, APR)


async def test_an_invalidation_between_the_chunk_read_and_the_store_leaves_nothing(
    db: Database,
) -> None:
    cache, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    await write(cache, chunks, POINT, MAR, APR, seed=1, step=5 * MS_PER_MINUTE)

    async def invalidate() -> None:
        chunks.samples.clear()
        await cache.delete(SITE, [POINT])

    await cache.read(SITE, [POINT], "15m", MAR, APR, rebuild=interleaved(chunks, invalidate))
    assert await stored_months(db, "15m") == [] and await stored_months(db, "1h") == []


async def test_damaged_blobs_of_either_level_are_rebuilt_in_step(db: Database) -> None:
    cache, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    await write(cache, chunks, POINT, MAR, MAY, seed=1, step=5 * MS_PER_MINUTE)
    await cache.read(SITE, [POINT], "15m", MAR, APR, rebuild=chunks.rebuild)  # March built
    rows = await db.rollups.get(SITE, [POINT], "15m", MAR, MAY)
    hourly = await db.rollups.get(SITE, [POINT], "1h", MAR, MAY)
    # March's 15-minute blob and April's hourly one are damaged
    await db.rollups.put([replace(rows[0], blob=b"junk", updated_at_ms=rows[0].updated_at_ms + 1)])
    await db.rollups.put(
        [replace(hourly[1], blob=b"junk", updated_at_ms=hourly[1].updated_at_ms + 1)]
    )
    # a write into both months rebuilds the damaged blobs whole from the chunks
    await write(cache, chunks, POINT, MAR + 20 * MS_PER_DAY, APR + 3 * MS_PER_DAY, 5, 60_000)
    fresh = RollupCache(db.rollups, memory_bytes=1 << 24)
    assert_quarters(
        (await fresh.read(SITE, [POINT], "15m", MAR, APR))[POINT], chunks.of(POINT), MAR, APR
    )
    hours = (await fresh.read(SITE, [POINT], "1h", MAR, MAY))[POINT]
    want = rollups.bucketize(chunks.of(POINT), 60 * MS_PER_MINUTE)
    assert hours.count.tolist() == want.count.tolist()
    # a damaged blob found by a read is rebuilt by that read
    rows = await db.rollups.get(SITE, [POINT], "15m", MAR, MAY)
    await db.rollups.put([replace(rows[0], blob=b"junk", updated_at_ms=rows[0].updated_at_ms + 1)])
    got = await fresh.read(SITE, [POINT], "15m", MAR, APR, rebuild=chunks.rebuild)
    assert_quarters(got[POINT], chunks.of(POINT), MAR, APR)
    stored = await db.rollups.get(SITE, [POINT], "15m", MAR, APR)
    assert rollups.unpack(stored[0].blob).width_ms == QUARTER


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    """Writes (a period with new samples) and 15-minute reads (a window), in any order,
    over two months and two points."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["write", "read", "read"]))
        start = (
            MAR
            + draw(st.integers(0, 58 * 24 * 4)) * QUARTER
            + draw(st.sampled_from([0, 0, 1, 7 * MS_PER_MINUTE]))
        )
        length = draw(st.integers(1, 20 * 24 * 4)) * QUARTER
        out.append((kind, draw(st.integers(0, 1)), start, min(start + length, MAY)))
    return out


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations(), step=st.sampled_from([60_000, 7 * 60_000, 40 * 60_000]))
def test_any_writes_and_reads_answer_the_quarters_of_the_samples(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int, int]], step: int
) -> None:
    """Differential: after any writes, any window's 15-minute buckets (read by this
    process, which builds them, and by another, which reads them stored) equal the
    buckets of the samples by brute force."""
    import anyio

    async def run() -> None:
        url = f"sqlite:///{tmp_path_factory.mktemp('lazy')}/tsgate.db"
        db = await open_database(url, migrate=True)
        try:
            here = RollupCache(db.rollups, memory_bytes=1 << 24)
            there = RollupCache(db.rollups, memory_bytes=1 << 24)
            chunks = Chunks()
            names = [POINT, "p/two"]
            for n in names:
                await write(here, chunks, n, MAR, MAY, seed=9, step=5 * MS_PER_MINUTE)
            for i, (kind, which, start, end) in enumerate(ops):
                name = names[which]
                if kind == "write":
                    await write(there, chunks, name, start, end, seed=i, step=step)
                    continue
                got = await here.read(SITE, names, "15m", start, end, rebuild=chunks.rebuild)
                for n in names:
                    assert_quarters(got[n], chunks.of(n), start, end)
                stored = await there.read(SITE, names, "15m", start, end)
                for n in names:
                    assert_quarters(stored[n], chunks.of(n), start, end)
        finally:
            await db.aclose()

    anyio.run(run)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_gateways_sharing_storage_keep_a_built_month_in_step(
    tmp_path: Path, backend: str
) -> None:
    """Gateway A builds a month's 15-minute blob; gateway B, on the same database and
    objects, writes samples that became visible late into that month: both then answer
    the month's quarters of what upstream holds now."""
    from tests.asgi import sim_client
    from tests.clock import Clock
    from tests.service.test_integrity import LateUpstream, Outage
    from tsgate.series.invalidation import invalidate
    from tsgate.settings import Settings
    from tsgate.upstream.simulator import create_simulator
    from tsgate.wire.ace import parse_time
    from tsgate.wiring import open_services

    clock = Clock(parse_time("now", "2025-11-15T12:00:00"))
    sim = create_simulator(seed=1, now_ms=clock)
    site = sim.sites[2]
    names = [p.name for p in site.collecting[:3]]
    oct1, nov1 = parse_time("s", "2025-10-01T00:00:00"), parse_time("e", "2025-11-01T00:00:00")
    day = parse_time("d", "2025-10-12T00:00:00")
    outage = Outage(set(names[:2]), day, day + MS_PER_DAY, clock.ms + MS_PER_DAY)

    def upstream() -> LateUpstream:
        late = LateUpstream(sim_client(sim), clock)
        late.outages.append(outage)
        return late

    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/tsgate.db"
            if backend == "sqlite"
            else stack.enter_context(postgres_schema())
        )
        settings = Settings(
            database_url=url,
            objects_url=f"file://{tmp_path}/objects",
            upstream_measure_costs=False,
            maintenance_interval_s=0,
            recheck_interval_s=0,
        )
        a_up, b_up = upstream(), upstream()
        async with (
            open_services(settings, upstream=a_up, clock_ms=clock) as a,  # type: ignore[arg-type]
            open_services(settings, upstream=b_up, clock_ms=clock) as b,  # type: ignore[arg-type]
        ):
            first, _ = await a.reader.read_rollups(site.name, names, "15m", oct1, nov1, token="t")
            held, _ = await a.reader.read(site.name, names, oct1, nov1, token="t")
            for n in names:
                assert_quarters(first[n], held[n], oct1, nov1)
            assert not len(held[names[0]].crop(day, day + MS_PER_DAY))  # not visible yet
            assert len(await a.database.rollups.get(site.name, names, "15m", oct1, nov1)) == 3
            # the backlog is released; B drops the day and reads it again (a repair)
            clock.ms = outage.released_ms + 1
            await invalidate(b.reader.store, site.name, names[:2], day, day + MS_PER_DAY)
            await b.reader.read(site.name, names, day, day + MS_PER_DAY, token="t")
            truth = await b_up.points_series(names, oct1, nov1, token="t")
            assert len(truth[names[0]].crop(day, day + MS_PER_DAY)) > 100
            for gateway in (a, b):
                got, _ = await gateway.reader.read_rollups(
                    site.name, names, "15m", oct1, nov1, token="t"
                )
                for n in names:
                    assert_quarters(got[n], truth[n].crop(oct1, nov1), oct1, nov1)


async def test_a_month_with_a_lost_chunk_is_answered_but_not_stored_built(db: Database) -> None:
    cache, chunks = RollupCache(db.rollups, memory_bytes=1 << 24), Chunks()
    await write(cache, chunks, POINT, MAR, APR, seed=1, step=5 * MS_PER_MINUTE)
    chunks.lost.add((POINT, MAR))
    got = await cache.read(SITE, [POINT], "15m", MAR, APR, rebuild=chunks.rebuild)
    assert_quarters(got[POINT], chunks.of(POINT), MAR, APR - 5 * MS_PER_DAY)
    assert await stored_months(db, "15m") == []  # never kept missing samples
    chunks.lost.clear()  # the chunk is fetched again (the reader refills what is lost)
    got = await cache.read(SITE, [POINT], "15m", MAR, APR, rebuild=chunks.rebuild)
    assert_quarters(got[POINT], chunks.of(POINT), MAR, APR)
    assert await stored_months(db, "15m") == [MAR]
