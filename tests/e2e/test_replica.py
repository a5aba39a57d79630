"""The read/write split against a real PostgreSQL streaming replica: stale-ok reads are
served by the replica while it keeps up, by the primary while it lags or is gone (health
says which), and no task ever misses its own write in a concurrent workload."""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
import pytest

from tests.pg_cluster import StreamingPair, streaming_pair
from tsgate.database import Database, RequestStat, open_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]
T = TypeVar("T")


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as started:
        yield started


@pytest.fixture
async def db(pair: StreamingPair) -> AsyncIterator[Database]:
    schema = f"t{uuid.uuid4().hex[:10]}"
    opened = await open_database(
        pair.primary_url, migrate=False, read_urls=[pair.replica_url], max_lag_s=0.5
    )
    async with opened.sql.write() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    await opened.aclose()
    options = f"?options=-csearch_path%3D{schema}"
    database = await open_database(
        pair.primary_url + options,
        migrate=True,
        read_urls=[pair.replica_url + options],
        max_lag_s=0.5,
    )
    assert database.sql.replicas is not None
    pair.wait_caught_up()  # the schema is on the replica before any test reads there
    database.sql.replicas.check_s = 0.0  # measure the lag at every read
    yield database
    await database.aclose()


def fresh(make: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """A task of its own, as a new request is: it has written nothing yet."""
    return asyncio.create_task(make(), context=contextvars.Context())  # type: ignore[arg-type]


def stat(label: str) -> RequestStat:
    return RequestStat(int(time.time() * 1000), "/api/x", 200, 1.0, 0, 10, label)


async def labels(db: Database) -> set[str]:
    return {g.cache_status for g in await db.stats.groups(0)}


def replica_has(pair: StreamingPair, label: str, schema_url: str) -> bool:
    with psycopg.connect(schema_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM request_stats WHERE cache_status = %s", (label,)
        ).fetchone()
    return bool(found and found[0])


async def _replayed(pair: StreamingPair, db: Database, label: str) -> None:
    url = pair.replica_url + "?options=" + quote(_search_path(db))
    for _ in range(200):
        if replica_has(pair, label, url):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the replica never replayed the write")


def _search_path(db: Database) -> str:
    return str(db.sql.engine.url.query["options"])


async def test_reads_go_to_the_replica_while_it_keeps_up(pair: StreamingPair, db: Database) -> None:
    await fresh(lambda: db.stats.record([stat("kept-up")]))
    await _replayed(pair, db, "kept-up")
    replicas = db.sql.replicas
    assert replicas is not None
    before = dict(replicas.reads)
    seen = await fresh(lambda: labels(db))
    assert "kept-up" in seen
    assert replicas.reads["replica"] == before["replica"] + 1
    assert replicas.reads["primary"] == before["primary"]
    health = await db.replica_health()
    assert [h["status"] for h in health] == ["ok"] and health[0]["lag_s"] == 0.0


async def test_a_lagging_replica_is_skipped_until_it_catches_up(
    pair: StreamingPair, db: Database
) -> None:
    replicas = db.sql.replicas
    assert replicas is not None
    with psycopg.connect(pair.replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            await asyncio.sleep(0.8)  # the last replayed transaction ages past the bound
            await fresh(lambda: db.stats.record([stat("while-lagging")]))
            await asyncio.sleep(0.3)  # received by the replica, not replayed
            before = dict(replicas.reads)
            seen = await fresh(lambda: labels(db))
            health = await db.replica_health()
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    assert "while-lagging" in seen  # the answer is right: the primary gave it
    assert replicas.reads["primary"] == before["primary"] + 1
    assert replicas.reads["replica"] == before["replica"]
    assert health[0]["status"] == "lagging" and health[0]["lag_s"] > 0.5

    await _replayed(pair, db, "while-lagging")
    seen = await fresh(lambda: labels(db))
    assert "while-lagging" in seen
    assert replicas.reads["replica"] == before["replica"] + 1  # back on the replica


async def test_no_task_misses_its_own_write(pair: StreamingPair, db: Database) -> None:
    replicas = db.sql.replicas
    assert replicas is not None
    before = dict(replicas.reads)

    async def writer(i: int) -> bool:
        label = f"mine-{i}"
        await db.stats.record([stat(label)])
        return label in await labels(db)  # at once, in the same task

    async def reader() -> int:
        return len(await labels(db))

    tasks = [fresh(lambda i=i: writer(i)) for i in range(40)]
    readers = [fresh(reader) for _ in range(40)]
    results = await asyncio.gather(*tasks)
    await asyncio.gather(*readers)
    assert all(results)
    # the readers that wrote nothing were free to use the replica, and some did
    assert replicas.reads["replica"] > before["replica"]


async def test_a_lost_replica_is_skipped_and_health_says_so(
    pair: StreamingPair, db: Database
) -> None:
    replicas = db.sql.replicas
    assert replicas is not None
    pair.stop_replica()
    try:
        await fresh(lambda: db.stats.record([stat("after-loss")]))
        seen = await fresh(lambda: labels(db))
        health = await db.replica_health()
    finally:
        pair.start_replica()
    assert "after-loss" in seen
    assert health[0]["status"] == "error" and "detail" in health[0]
    assert replicas.replicas[0].state(replicas.max_lag_s) == "error"
    await _replayed(pair, db, "after-loss")  # it comes back and catches up
    assert "after-loss" in await fresh(lambda: labels(db))
    assert replicas.replicas[0].state(replicas.max_lag_s) == "ok"


async def test_health_lists_the_replicas(pair: StreamingPair, db: Database, tmp_path: Any) -> None:
    from tests.asgi import api_client
    from tsgate.settings import Settings
    from tsgate.upstream.simulator import create_simulator

    options = str(db.sql.engine.url.query["options"])
    conf = Settings.from_env(
        {
            "TSGATE_DATABASE_URL": f"{pair.primary_url}?options={quote(options)}",
            "TSGATE_DATABASE_READ_URL": f"{pair.replica_url}?options={quote(options)}, ",
            "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
        }
    )
    assert len(conf.database_read_url) == 1
    async with api_client(conf, create_simulator(seed=1)) as api:
        well = (await api.get("/api/health")).json()
        pair.stop_replica()
        try:
            lost = await api.get("/api/health")
            stats = await api.get("/api/stats")  # a stale-ok read: served by the primary
        finally:
            pair.start_replica()
    name = f"127.0.0.1:{pair.replica_port}/postgres"
    assert well["checks"]["database"]["replicas"] == [{"name": name, "status": "ok", "lag_s": 0.0}]
    assert well["status"] == "healthy"
    body = lost.json()
    assert lost.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "degraded"
    assert body["checks"]["database"]["replicas"][0]["status"] == "error"
    assert stats.status_code == 200


async def test_pooling_behind_pgbouncer_in_transaction_mode(pair: StreamingPair) -> None:
    """With TSGATE_DATABASE_PREPARE=false nothing depends on a server session: many tasks
    whose transactions PgBouncer spreads over two server connections all succeed."""
    from tests.pg_cluster import pgbouncer

    with psycopg.connect(pair.primary_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bounced")
        conn.execute("CREATE DATABASE bounced")
    with pgbouncer(pair) as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/bounced"
        bounced = await open_database(url, migrate=True, prepare=False)
        try:
            async with bounced.sql.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                assert raw.driver_connection.prepare_threshold is None  # type: ignore[union-attr]

            async def work(i: int) -> set[str]:
                for n in range(12):  # past psycopg's default threshold of 5 executions
                    await bounced.stats.record([stat(f"b-{i}-{n}")])
                    await bounced.stats.groups(0)
                return await labels(bounced)

            seen = await asyncio.gather(*(fresh(lambda i=i: work(i)) for i in range(8)))
        finally:
            await bounced.aclose()
    assert all({f"b-{i}-{n}" for n in range(12)} <= seen[i] for i in range(8))
