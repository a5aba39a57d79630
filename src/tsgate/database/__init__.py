"""The database seam: the chunk index, point catalog, rollup blobs and request statistics.

SQLAlchemy Core on an async engine chosen by URL scheme (see ``engine``)::

    db = await open_database("sqlite:///./var/tsgate.db", migrate=True)
    try:
        rows = await db.chunks.overlapping(site, names, "raw", start_ms, end_ms)
    finally:
        await db.aclose()

Driver failures surface as :class:`~tsgate.errors.StorageError`; bad URLs as
:class:`~tsgate.errors.ConfigError`; a missing psycopg as
:class:`~tsgate.errors.MissingDependency` (extra ``postgres``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from tsgate.database.charts import SavedCharts
from tsgate.database.chunks import SqlChunkIndex
from tsgate.database.engine import SqlEngine, create_engine, engine_url, is_memory, storage_error
from tsgate.database.files import StoredFiles
from tsgate.database.migrations import upgrade_head
from tsgate.database.modes import ObservedModes
from tsgate.database.monitor import SqlMonitorHistory
from tsgate.database.points import PointCatalog
from tsgate.database.replicas import Replica, ReplicaSet, display_name
from tsgate.database.rollups import RollupStore
from tsgate.database.secrets import Secrets
from tsgate.database.stats import RequestStats
from tsgate.database.tables import metadata
from tsgate.errors import ConfigError
from tsgate.files.model import StoredFile
from tsgate.ops.rules import AlertEvent
from tsgate.ops.stats import RequestStat

__all__ = [
    "AlertEvent",
    "Database",
    "PointCatalog",
    "RequestStat",
    "RequestStats",
    "RollupStore",
    "SavedCharts",
    "SqlChunkIndex",
    "SqlMonitorHistory",
    "StoredFile",
    "StoredFiles",
    "migrate",
    "open_database",
]

# pg_total_relation_size counts indexes and TOAST (where large blobs live).
_PG_SIZE = sa.text(
    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:names)"
)


class Database:
    """An open database: the four repositories plus health probes. Close with ``aclose``."""

    def __init__(self, sql: SqlEngine) -> None:
        # Public for sibling repositories (e.g. jobs) that share this engine.
        self.sql = sql
        self.dialect = sql.dialect
        self.chunks = SqlChunkIndex(sql)
        self.points = PointCatalog(sql)
        self.rollups = RollupStore(sql)
        self.modes = ObservedModes(sql)
        self.stats = RequestStats(sql)
        self.charts = SavedCharts(sql)
        self.secrets = Secrets(sql)
        self.files = StoredFiles(sql)
        self.monitor = SqlMonitorHistory(sql)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (``alembic upgrade head``); idempotent."""
        async with self.sql.connection() as conn:
            await conn.run_sync(upgrade_head)

    async def ping(self) -> float:
        """Round-trip latency of ``SELECT 1`` in seconds."""
        started = time.perf_counter()
        async with self.sql.read() as conn:
            await conn.execute(sa.select(1))
        return time.perf_counter() - started

    async def replica_health(self) -> list[dict[str, object]]:
        """Each read replica's state (``ok``, ``lagging``, ``error``) and lag, checked now."""
        return [] if self.sql.replicas is None else await self.sql.replicas.check_all()

    async def size_bytes(self) -> int:
        """Bytes the store occupies: the SQLite file's pages, or our PostgreSQL tables."""
        async with self.sql.read() as conn:
            if self.dialect == "sqlite":
                pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
                page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
                return int(pages) * int(page_size)
            names = sorted(metadata.tables)
            return int((await conn.execute(_PG_SIZE, {"names": names})).scalar_one())

    async def aclose(self) -> None:
        await self.sql.aclose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def open_database(
    url: str,
    *,
    migrate: bool = False,
    read_urls: Sequence[str] = (),
    max_lag_s: float = 5.0,
    prepare: bool = True,
) -> Database:
    """Open the database at ``url`` (``sqlite://…`` or ``postgresql://…``), with the
    PostgreSQL streaming replicas ``read_urls`` for reads that may be slightly stale.

    No connection is made unless ``migrate`` is true, which upgrades the schema first.
    """
    sa_url = engine_url(url)
    try:
        engine = create_engine(sa_url, prepare=prepare)
        replicas = _replicas(read_urls, max_lag_s=max_lag_s, prepare=prepare)
    except (SQLAlchemyError, OSError) as exc:
        raise storage_error(exc) from exc
    sql = SqlEngine(engine, shared_connection=is_memory(sa_url), replicas=replicas)
    db = Database(sql)
    if migrate:
        try:
            await db.migrate()
        except BaseException:
            await db.aclose()
            raise
    return db


def _replicas(urls: Sequence[str], *, max_lag_s: float, prepare: bool) -> ReplicaSet | None:
    if not urls:
        return None
    replicas = []
    for url in urls:
        sa_url = engine_url(url)
        if sa_url.get_backend_name() != "postgresql":
            raise ConfigError(f"TSGATE_DATABASE_READ_URL: {url!r}: replicas are PostgreSQL")
        replicas.append(Replica(display_name(sa_url), create_engine(sa_url, prepare=prepare)))
    return ReplicaSet(replicas, max_lag_s=max_lag_s)


async def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema; a no-op when it is current.

    Async, like the rest of the seam. An in-memory URL gets a fresh database each time,
    so use ``open_database(url, migrate=True)`` for those.
    """
    db = await open_database(url)
    try:
        await db.migrate()
    finally:
        await db.aclose()
