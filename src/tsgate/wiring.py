"""The composition root: the only module that builds concrete backends."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from tsgate.database import Database, open_database
from tsgate.object_store import open_object_store
from tsgate.object_store.base import ObjectStore
from tsgate.series.access import AccessCheck
from tsgate.series.catalog import PointCatalog
from tsgate.series.chunkstore import ChunkStore
from tsgate.series.reader import CachePolicy, SeriesReader
from tsgate.settings import Settings
from tsgate.upstream import open_upstream
from tsgate.upstream.base import Upstream

log = logging.getLogger("tsgate")


@dataclass
class Services:
    """Everything a request handler may use, opened once per process."""

    settings: Settings
    upstream: Upstream
    database: Database
    objects: ObjectStore
    reader: SeriesReader
    access: AccessCheck
    catalog: PointCatalog
    salt: bytes = field(repr=False)


def cache_policy(settings: Settings) -> CachePolicy:
    return CachePolicy(
        settle_ms=int(settings.settle_s * 1000),
        open_ttl_ms=int(settings.open_ttl_s * 1000),
        site_stream_min_points=settings.site_stream_min_points,
        site_page_size=settings.upstream_page_size,
        upstream_concurrency=settings.upstream_concurrency,
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    upstream: Upstream | None = None,
    clock_ms: Callable[[], int] | None = None,
) -> AsyncIterator[Services]:
    """Open every backend named by ``settings``; close them all on exit.

    ``upstream`` and ``clock_ms`` may be given by tests (a simulator with fault switches,
    an injected clock).
    """
    salt = secrets.token_bytes(32)
    async with contextlib.AsyncExitStack() as stack:
        up = upstream if upstream is not None else open_upstream(settings)
        stack.push_async_callback(up.aclose)
        # the embedded SQLite database migrates itself; shared servers use `tsgate migrate`
        database = await open_database(settings.database_url, migrate=settings.auto_migrate)
        stack.push_async_callback(database.aclose)
        objects = open_object_store(settings.objects_url)
        stack.push_async_callback(objects.aclose)
        store = ChunkStore(database, objects, memory_bytes=settings.memory_cache_bytes)
        access = AccessCheck(up, salt, ttl_ms=int(settings.access_ttl_s * 1000), clock_ms=clock_ms)
        reader = SeriesReader(up, store, access, cache_policy(settings), clock_ms=clock_ms)
        catalog = PointCatalog(
            up, database, access, ttl_ms=int(settings.points_ttl_s * 1000), clock_ms=clock_ms
        )
        stack.push_async_callback(reader.aclose)
        yield Services(
            settings=settings,
            upstream=up,
            database=database,
            objects=objects,
            reader=reader,
            access=access,
            catalog=catalog,
            salt=salt,
        )
