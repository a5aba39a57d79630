"""The composition root: the only module that builds concrete backends."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from tsgate.cache import open_cache
from tsgate.clock import wall_clock_ms
from tsgate.database import Database, migrate, open_database
from tsgate.database.jobs import SqlJobStore
from tsgate.database.notifications import SqlNotifications
from tsgate.errors import ConfigError
from tsgate.files.retention import FileRetention
from tsgate.jobqueue import open_job_queue
from tsgate.jobqueue.base import JobQueue
from tsgate.jobs.handlers import default_handlers
from tsgate.jobs.model import RetryPolicy
from tsgate.jobs.runner import Describe, GapLimits, JobRunner
from tsgate.jobs.service import JobService
from tsgate.jobs.store import JobStore
from tsgate.jobs.tokens import TokenBox, scope_key
from tsgate.jobs.webhooks import WebhookOutbox, WebhookSender
from tsgate.jobs.worker import Worker, running
from tsgate.object_store import open_object_store
from tsgate.object_store.base import ObjectStore
from tsgate.ops.alerts import Alerts
from tsgate.ops.maintenance import (
    Maintenance,
    MaintenanceOptions,
    MaintenanceScheduler,
)
from tsgate.ops.monitor import Monitor
from tsgate.ops.recorder import StatsRecorder
from tsgate.ops.report import DailyReports
from tsgate.ops.warm import ChartWarmer
from tsgate.series.access import AccessCheck
from tsgate.series.catalog import PointCatalog
from tsgate.series.chunkstore import ChunkStore
from tsgate.series.live import LiveHub, LiveLimits
from tsgate.series.planning import CachePolicy
from tsgate.series.reader import SeriesReader
from tsgate.series.recheck import Rechecker
from tsgate.series.versions import StoredGenerations
from tsgate.series.zones import SiteZones
from tsgate.services import Services
from tsgate.settings import Settings
from tsgate.upstream import open_upstream
from tsgate.upstream.guarded import GuardedUpstream

log = logging.getLogger("tsgate")
# where the generated secret lives when TSGATE_SECRET is unset (names, not secrets): the
# database row, and the object an older release kept it in (read once, to adopt it)
SECRET_NAME = "tsgate_secret"  # noqa: S105 - a row name
SECRET_OBJECT = "_system/secret"  # noqa: S105 - an object key


@dataclass
class OpenedServices(Services):
    """The services with the database and the reader they were built on, for the CLI's
    commands (verify and repair, warm) and the tests; handlers see :class:`Services` only."""

    database: Database = field(kw_only=True, repr=False)
    series_reader: SeriesReader = field(kw_only=True, repr=False)


def salt_of(settings: Settings) -> bytes:
    """The token-hash salt: ``TSGATE_TOKEN_SALT``, else derived from the secret (which
    ``open_services`` has resolved before calling this)."""
    configured = settings.token_salt or settings.secret
    if not configured:
        raise ConfigError("no secret resolved: salt_of needs TSGATE_TOKEN_SALT or a secret")
    return hashlib.blake2b(configured.encode(), digest_size=32, person=b"tsgate-salt").digest()


async def secret_of(settings: Settings, database: Database, objects: ObjectStore) -> str:
    """``TSGATE_SECRET``, else one generated on the first start and kept in the database
    (durable, unlike the object store, which is a cache), so that every restart and every
    process sharing the database agree on sealed job tokens, webhook signatures, token
    hashes and so on saved charts and rate limits. Of processes starting together,
    exactly one's value is kept. A secret an older release kept in the object store
    (``_system/secret``) is adopted, so nothing saved under it is lost."""
    if settings.secret:
        return settings.secret
    stored = await database.secrets.get(SECRET_NAME)
    if stored is not None:
        return stored
    legacy = await objects.get(SECRET_OBJECT)
    candidate = legacy.decode() if legacy else secrets.token_hex(32)
    return await database.secrets.put_if_absent(SECRET_NAME, candidate, wall_clock_ms())


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    upstream: GuardedUpstream | None = None,
    clock_ms: Callable[[], int] | None = None,
    shared_processes: bool = False,
) -> AsyncIterator[OpenedServices]:
    """Open every backend named by ``settings``; close them all on exit.

    ``upstream`` and ``clock_ms`` may be given by tests (a simulator with fault switches,
    an injected clock). ``shared_processes``: other processes write to the same stores
    (the job workers of ``tsgate serve``, or this is one), as with ``--workers N``.
    """
    async with contextlib.AsyncExitStack() as stack:
        objects = open_object_store(settings.objects_url)
        stack.push_async_callback(objects.aclose)
        # the embedded SQLite database migrates itself; shared servers use `tsgate migrate`
        database = await open_database(
            settings.database_url,
            migrate=settings.auto_migrate,
            read_urls=settings.database_read_url,
            max_lag_s=settings.replica_max_lag_s,
            prepare=settings.database_prepare,
        )
        stack.push_async_callback(database.aclose)
        secret = await secret_of(settings, database, objects)
        settings = dataclasses.replace(settings, secret=secret)
        salt = salt_of(settings)
        up = upstream if upstream is not None else open_upstream(settings)
        stack.push_async_callback(up.aclose)
        cache = open_cache(settings.cache_url)
        stack.push_async_callback(cache.aclose)
        store = ChunkStore(
            database.chunks,
            database.points,
            database.rollups,
            database.modes,
            objects,
            memory_bytes=settings.memory_cache_bytes,
        )
        access = AccessCheck(
            up,
            salt,
            ttl_ms=int(settings.access_ttl_s * 1000),
            deny_ttl_ms=int(settings.access_deny_ttl_s * 1000),
            clock_ms=clock_ms,
        )
        policy = CachePolicy.of(settings, settings)
        reader = SeriesReader(up, store, access, policy, cache=cache, clock_ms=clock_ms)
        shared = shared_processes or settings.workers > 1
        if shared and settings.cache_url.startswith("memory:"):
            # the processes of one server share no cache: the data versions that key every
            # kept answer go to the shared object store instead
            reader.generations = StoredGenerations(objects)
        catalog = PointCatalog(
            up,
            database.points,
            access,
            database.modes,
            ttl_ms=int(settings.points_ttl_s * 1000),
            clock_ms=clock_ms,
        )
        zones = SiteZones(up, access, settings.zone_overrides())
        kinds = settings.point_kind_overrides()
        stack.push_async_callback(reader.aclose)
        live = LiveHub(reader, LiveLimits.of(settings))
        stack.push_async_callback(live.aclose)
        recorder = StatsRecorder(database.stats, flush_s=settings.stats_flush_s)
        recorder.start()
        stack.push_async_callback(recorder.aclose)
        queue = open_job_queue(settings.queue_url)
        stack.push_async_callback(queue.aclose)
        jobs, worker = build_jobs(
            settings,
            database,
            objects,
            reader,
            queue,
            clock_ms,
            describe=lambda site, names, token: catalog.describe(site, names, token, kinds),
            gap_limits=lambda site, names, token, span: catalog.gap_limits(
                site,
                names,
                token,
                kinds,
                span=span,
                floor_ms=int(settings.cov_gap_floor_s * 1000),
            ),
        )
        if settings.inline_worker:
            # embedded default: jobs run inside this process; on exit a job in hand is
            # given back to the store for the next start (or another worker)
            await stack.enter_async_context(running(worker))
        alerts = Alerts()
        monitor = Monitor(
            database.monitor,
            alerts,
            settings.alert_rule_set(),
            breaker_open=lambda: up.circuit_state() != "closed",
            retention_days=settings.monitor_retention_days,
            window_ms=int(max(settings.monitor_interval_s, 60.0) * 1000),
        )
        rechecker = Rechecker(reader, settings.upstream_token or "")
        warmer = ChartWarmer(
            reader,
            database.charts,
            access,
            settings.upstream_token or "",
            settings.warm_charts_days,
            settings.warm_charts_concurrency,
            catalog,
        )
        maintenance = Maintenance(
            recorder=recorder,
            stats=database.stats,
            database=database,
            chunks=database.chunks,
            jobs=jobs,
            alerts=alerts,
            charts=database.charts,
            rechecks=rechecker,
            files=FileRetention(database.files, objects),
            monitor=monitor,
            warming=warmer,
            reports=(
                DailyReports(database.monitor, objects) if settings.daily_report_objects else None
            ),
            options=MaintenanceOptions.of(settings),
        )
        services = OpenedServices(
            settings=settings,
            upstream=up,
            health=database,
            database=database,
            series_reader=reader,
            objects=objects,
            reader=reader,
            policy=policy,
            access=access,
            catalog=catalog,
            zones=zones,
            cache=cache,
            recorder=recorder,
            salt=salt,
            jobs=jobs,
            worker=worker,
            maintenance=maintenance,
            alerts=alerts,
            rechecks=rechecker.counters,
            warming=warmer.counters,
            monitor=monitor,
            kinds=kinds,
            points=database.points,
            chunks=database.chunks,
            charts=database.charts,
            files=database.files,
            monitoring=database.monitor,
            stats=database.stats,
            live=live,
            clock_ms=clock_ms or wall_clock_ms,
        )
        scheduler = MaintenanceScheduler(
            maintenance,
            settings.maintenance_interval_s,
            clock_ms or wall_clock_ms,
            recheck_s=settings.recheck_interval_s,
            sample_s=settings.monitor_interval_s,
        )
        scheduler.start()
        stack.push_async_callback(scheduler.aclose)
        yield services


@dataclass(frozen=True)
class JobAdmin:
    """What the operators' job commands act on: the shared store and the wake-ups."""

    store: JobStore
    queue: JobQueue


@contextlib.asynccontextmanager
async def open_job_admin(settings: Settings) -> AsyncIterator[JobAdmin]:
    """The job store and queue of ``settings``, without servers' other backends."""
    async with contextlib.AsyncExitStack() as stack:
        database = await open_database(settings.database_url, migrate=settings.auto_migrate)
        stack.push_async_callback(database.aclose)
        queue = open_job_queue(settings.queue_url)
        stack.push_async_callback(queue.aclose)
        yield JobAdmin(SqlJobStore(database.sql), queue)


async def migrate_database(settings: Settings) -> None:
    """Upgrade the database of ``settings`` to the newest schema."""
    await migrate(settings.database_url)


def build_jobs(
    settings: Settings,
    database: Database,
    objects: ObjectStore,
    reader: SeriesReader,
    queue: JobQueue,
    clock_ms: Callable[[], int] | None = None,
    *,
    describe: Describe | None = None,
    gap_limits: GapLimits | None = None,
) -> tuple[JobService, Worker]:
    """The job service (for the API) and a worker (inline or ``tsgate worker``)."""
    clock = clock_ms or wall_clock_ms
    store = SqlJobStore(database.sql)
    if not settings.secret:
        raise ConfigError("no secret resolved: build_jobs is called by open_services")
    secret = settings.secret.encode()
    service = JobService(
        store,
        queue,
        objects,
        TokenBox(secret),
        scope_key(settings.secret),
        clock,
        server_token=settings.upstream_token,
        max_attempts=settings.job_max_attempts,
        retention_ms=int(settings.job_retention_s * 1000),
        max_open=settings.max_open_jobs_per_caller,
    )
    lease_ms = int(settings.job_lease_s * 1000)
    runner = JobRunner(
        store,
        reader,
        objects,
        default_handlers(),
        service.token_for,
        retry=RetryPolicy.of(settings),
        lease_ms=lease_ms,
        heartbeat_s=settings.job_heartbeat_s,
        clock_ms=clock,
        describe=describe,
        gap_limits=gap_limits,
    )
    sender = WebhookSender(
        secret,
        allow_private=settings.webhook_allow_private,
        retries=settings.webhook_retries,
        timeout_s=settings.webhook_timeout_s,
    )
    worker = Worker(
        store,
        queue,
        runner,
        clock,
        poll_s=settings.job_poll_s,
        lease_ms=lease_ms,
        outbox=WebhookOutbox(
            SqlNotifications(database.sql),
            sender,
            clock,
            concurrency=settings.webhook_concurrency,
            per_host=settings.webhook_per_host,
        ),
    )
    return service, worker
