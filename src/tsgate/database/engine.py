"""Async engines by URL scheme, transactions, and driver-error translation.

``sqlite:///path`` runs on aiosqlite in WAL mode; ``sqlite://`` is one shared in-memory
connection (tests). ``postgresql://`` runs on psycopg 3 (extra ``postgres``). Every
repository goes through :meth:`SqlEngine.read` / :meth:`SqlEngine.write`, the one place
where driver errors become :class:`~tsgate.errors.StorageError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.util
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from tsgate._backends import scheme_of
from tsgate.database.replicas import ReplicaSet, has_written, wrote
from tsgate.errors import ConfigError, MissingDependency, StorageError

T = TypeVar("T")

# scheme → (SQLAlchemy driver name, driver module, extra that installs it)
_DRIVERS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("sqlite+aiosqlite", "aiosqlite", None),
    "postgresql": ("postgresql+psycopg", "psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "psycopg", "postgres"),
}
_BUSY_TIMEOUT_MS = 5_000
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("tsgate_sql_writing", default=False)
_WRITE = "tsgate_write"  # connection execution option read by the SQLite "begin" hook


def engine_url(url: str) -> URL:
    """Translate a tsgate database URL into the async SQLAlchemy URL it runs on."""
    scheme = scheme_of(url).partition("+")[0]
    if scheme not in _DRIVERS:
        supported = ", ".join(f"{s}://" for s in sorted(_DRIVERS))
        raise ConfigError(f"database: unsupported scheme {scheme!r}; use one of {supported}")
    driver, module, extra = _DRIVERS[scheme]
    if extra is not None and importlib.util.find_spec(module) is None:
        raise MissingDependency(module, extra)
    try:
        return make_url(url).set(drivername=driver)
    except ArgumentError as exc:
        raise ConfigError(f"database: cannot parse URL {url!r}: {exc}") from exc


SQLITE_POOL_SIZE = 20
SQLITE_OVERFLOW = 40


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine(url: URL, *, prepare: bool = True) -> AsyncEngine:
    """``prepare=False`` turns psycopg's server-side prepared statements off, for
    PgBouncer in transaction mode (no session state survives a transaction there)."""
    if url.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {} if prepare else {"prepare_threshold": None}
        return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if is_memory(url):
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        Path(url.database or ".").parent.mkdir(parents=True, exist_ok=True)
        # WAL readers never block: many may be open at once (the default pool of 5 + 10
        # ran out under load); writers queue on SQLite's own lock (busy_timeout)
        engine = create_async_engine(url, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_OVERFLOW)
    _tune_sqlite(engine, wal=not is_memory(url))
    return engine


def _tune_sqlite(engine: AsyncEngine, *, wal: bool) -> None:
    # pysqlite's implicit transactions skip BEGIN before SELECTs and DDL; take control
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # Writers take the lock up front: a deferred read→write upgrade fails with
        # SQLITE_BUSY at once instead of waiting out busy_timeout.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlEngine:
    """An async engine plus the transaction scopes every repository uses."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        shared_connection: bool,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.replicas = replicas
        # One in-memory connection cannot interleave two transactions.
        self._lock = asyncio.Lock() if shared_connection else None
        # SQLite has one writer at a time: writers of this process queue here, holding no
        # connection, instead of each holding one while waiting out busy_timeout (under
        # load that emptied the pool and timed out reads too)
        self._writer = (
            asyncio.Lock() if self.dialect == "sqlite" and not shared_connection else None
        )

    @contextlib.asynccontextmanager
    async def read(self, *, stale_ok: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction. ``stale_ok``: a replica that keeps up may answer it,
        unless this task has written (then the primary does: read-your-writes)."""
        replica = None
        if stale_ok and self.replicas is not None and not has_written():
            replica = await self.replicas.choose()
        if replica is not None:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    conn = await stack.enter_async_context(replica.engine.connect())
                except (SQLAlchemyError, OSError) as exc:
                    replica.failed(exc)  # skipped from now on; this read goes to the primary
                else:
                    self.replicas.reads["replica"] += 1  # type: ignore[union-attr]
                    try:
                        await stack.enter_async_context(conn.begin())
                        yield conn
                    except (SQLAlchemyError, OSError) as exc:
                        replica.failed(exc)
                        raise storage_error(exc) from exc
                    return
        if self.replicas is not None:
            self.replicas.reads["primary"] += 1
        async with self._scope(write=False) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed on success, rolled back on any error."""
        wrote()
        async with self._scope(write=True) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A write-mode connection without a transaction (alembic begins its own)."""
        async with self._guard(), self._one_writer(write=True):
            try:
                async with self.engine.connect() as conn:
                    await conn.execution_options(**{_WRITE: True})
                    yield conn
            except (SQLAlchemyError, OSError) as exc:
                raise storage_error(exc) from exc

    @contextlib.asynccontextmanager
    async def _scope(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self._guard(), self._one_writer(write=write):
            try:
                async with self.engine.connect() as conn:
                    await conn.execution_options(**{_WRITE: write})
                    async with conn.begin():
                        yield conn
            except (SQLAlchemyError, OSError) as exc:
                raise storage_error(exc) from exc

    @contextlib.asynccontextmanager
    async def _one_writer(self, *, write: bool) -> AsyncIterator[None]:
        if self._writer is None or not write or _WRITING.get():
            yield  # not SQLite, a read, or a write inside this task's own write
            return
        async with self._writer:
            token = _WRITING.set(True)
            try:
                yield
            finally:
                _WRITING.reset(token)

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        if self._lock is None:
            yield
            return
        async with self._lock:
            yield

    def upsert(self, table: sa.Table) -> sa.Insert:
        """``INSERT … ON CONFLICT (primary key) DO UPDATE`` every other column."""
        insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        stmt = insert(table)
        keys = [c.name for c in table.primary_key.columns]
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    async def aclose(self) -> None:
        if self.replicas is not None:
            await self.replicas.aclose()
        await self.engine.dispose()


def storage_error(exc: BaseException) -> StorageError:
    """Our error for a driver failure; raise it ``from exc``."""
    # The driver's own message, not SQLAlchemy's, which echoes the parameters (blobs).
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    first_line = text.splitlines()[0] if text else ""
    return StorageError(f"database: {type(cause).__name__}: {first_line}")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
