"""``tsgate serve [--workers N]``: one server process, or N sharing the listening socket.

With more than one, the parent process binds the port, upgrades the embedded database
once (so the processes never migrate it at the same time) and supervises N processes
that each build the app from the same ``TSGATE_*`` environment (uvicorn's supervisor
restarts one that dies). What they share and what each keeps:

- shared: the database (SQLite in WAL mode takes writers from every process in turn),
  the object store (the chunk cache, results, exports), the generated secret (kept in
  the database: one process's value wins), the job store (a job is claimed by one
  worker under a lease), and each site's data version (in the object store when the
  cache is ``memory://``), so a repair in one process is seen by all within a second;
- per process with ``memory://``: the response cache and the fast answers (the same
  query may be computed once per process), the access grants (asked of upstream once per
  process), single-flight fetch locks, and the rate-limit buckets: a caller whose
  connections land on several processes may get up to N times ``TSGATE_RATE_LIMIT_*``.
  With a ``redis://`` cache all of these are shared and limits hold exactly;
- each process runs its own maintenance pass and re-checks (idempotent, but repeated).

Jobs (cold charts turned into jobs, exports) run in ``TSGATE_JOB_PROCESSES`` child
processes of their own (``tsgate worker``, :mod:`tsgate.cli.jobprocess`), not in the
server processes, so that their work never holds a server's event loop; ``0`` runs a
worker inside each server process instead. The children share what the server processes
share, and the database is migrated once before any of them starts. With the
``memory://`` queue a job posted to a server process wakes them through Unix datagram
sockets in a private directory made for this run (:mod:`tsgate.jobqueue.memory`,
removed at stop); other queues wake them themselves, and the poll of the store stays.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from tsgate import __version__
from tsgate.cli.jobprocess import JobProcesses
from tsgate.jobqueue.memory import WAKE_DIR_ENV
from tsgate.ops import logs
from tsgate.ops.logs import redact
from tsgate.settings import ENV_PREFIX, Settings

DEMO_TOKEN = "demo"  # noqa: S105 - the simulator accepts any token; this is no secret
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """``TSGATE_WORKERS``, else one process per CPU."""
    if os.environ.get(ENV_PREFIX + "WORKERS"):
        return Settings.from_env().workers
    return max(1, os.cpu_count() or 1)


def run(args: argparse.Namespace) -> int:

    workers = args.workers if args.workers is not None else default_workers()
    given = {"host": args.host, "port": args.port, "workers": workers}
    overrides = {k: v for k, v in given.items() if v is not None}
    settings = Settings.from_env(**overrides)
    if args.demo and not settings.upstream_token:
        # plain curl works in the demo: requests without a token use this one
        settings = Settings.from_env(**overrides, upstream_token=DEMO_TOKEN)
    url = f"http://{settings.host}:{settings.port}"
    processes = f", {workers} processes" if workers > 1 else ""
    print(f"tsgate {__version__} serving {url}/{processes}", flush=True)
    print(f"  health: {url}/api/health   upstream: {redact(settings.upstream_url)}", flush=True)
    if args.demo:
        print(f"demo mode: try  curl '{url}/api/sites'", flush=True)
    level = args.log_level or settings.log_level
    job_processes = settings.job_processes if settings.inline_worker else 0
    if job_processes:
        print(f"  jobs: {job_processes} worker process{'es' if job_processes > 1 else ''}")
    with _jobs_apart(settings, level, job_processes) as (serving, jobs):
        if workers == 1:
            from tsgate.app import create_app
            from tsgate.server import uvicorn_config

            config = uvicorn_config(
                create_app(serving, shared_processes=job_processes > 0, settle=True),
                serving,
                log_level=level,
                log_config=None,  # uvicorn's lines go through tsgate.ops.logs like every other
                access_log=False,  # tsgate.access logs one line per request instead
            )
            _run_server(config, jobs.stop if jobs else _nothing)
            return 0
        return _supervise(serving, level, jobs.terminate if jobs else _nothing)


def _run_server(config: Any, on_shutdown: Callable[[], None]) -> None:
    """uvicorn's server, calling ``on_shutdown`` once it has shut down: before uvicorn
    raises again the signal that stopped it (to exit as that signal says)."""
    import uvicorn

    server = uvicorn.Server(config)
    captured = server.capture_signals

    @contextlib.contextmanager
    def capture_signals() -> Iterator[None]:
        with captured():
            try:
                yield
            finally:
                on_shutdown()

    server.capture_signals = capture_signals  # type: ignore[method-assign]
    server.run()


def _process_env(settings: Settings, level: str) -> dict[str, str]:
    """What another process of this server reads its settings from: the environment
    where this one found them, plus what the command line said."""
    env = {
        ENV_PREFIX + "HOST": settings.host,
        ENV_PREFIX + "PORT": str(settings.port),
        ENV_PREFIX + "WORKERS": str(settings.workers),
        ENV_PREFIX + "LOG_LEVEL": level,
    }
    if settings.upstream_token:
        env[ENV_PREFIX + "UPSTREAM_TOKEN"] = settings.upstream_token
    return env


@contextlib.contextmanager
def _jobs_apart(
    settings: Settings, level: str, count: int
) -> Iterator[tuple[Settings, JobProcesses | None]]:
    """With ``count`` job processes: the database migrated once, the children started
    (and stopped on leaving, if not before), and the settings of server processes that
    run no job."""
    if not count:
        yield settings, None
        return
    from tsgate.wiring import migrate_database

    if settings.auto_migrate:
        asyncio.run(migrate_database(settings))  # before any of the processes opens it
    with _wake_dir(settings.queue_url) as remove:
        env = {**os.environ, **_process_env(settings, level)}
        env[ENV_PREFIX + "INLINE_WORKER"] = "true"
        children = JobProcesses(
            count, env, stop_timeout_s=settings.shutdown_timeout_s, cleanup=remove
        )
        children.start()
        try:
            yield dataclasses.replace(settings, inline_worker=False), children
        finally:
            children.stop()  # a second stop finds nothing left to stop


@contextlib.contextmanager
def _wake_dir(queue_url: str) -> Iterator[Callable[[], None]]:
    """With the ``memory://`` queue: a private directory (mode 0700) for the wake-up
    sockets of the job processes, named to every process started from here (the server
    processes and the job children inherit the environment). It is removed by the
    function given (the server stopped by a signal exits before leaving this block),
    or else on leaving."""
    if not queue_url.startswith("memory:"):
        yield _nothing  # Redis and RabbitMQ wake every process themselves
        return
    path = tempfile.mkdtemp(prefix="tsgate-wake-")  # mode 0700, this user's only

    def remove() -> None:
        os.environ.pop(WAKE_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)

    os.environ[WAKE_DIR_ENV] = path
    try:
        yield remove
    finally:
        remove()


def _nothing() -> None:
    return None


def _supervise(settings: Settings, level: str, on_stop: Callable[[], None]) -> int:
    """N server processes under uvicorn's supervisor; ``on_stop`` is called as it starts
    stopping them (the job processes then stop at the same time)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            on_stop()
            super().terminate_all()

    from tsgate.wiring import migrate_database

    if settings.auto_migrate:
        asyncio.run(migrate_database(settings))
    os.environ.update(_process_env(settings, level))
    os.environ[ENV_PREFIX + "INLINE_WORKER"] = "true" if settings.inline_worker else "false"
    config = uvicorn.Config(
        "tsgate.cli.serve:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http="tsgate.server:GuardedHttpProtocol",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
        log_level=level,
        log_config=None,
        access_log=False,
    )
    sock = config.bind_socket()
    Supervisor(config, sockets=[sock]).run()
    return 0


def worker_app() -> object:
    """The app of one of N server processes (uvicorn calls this in each)."""
    from tsgate.app import create_app
    from tsgate.server import GuardedHttpProtocol

    if sys.platform == "linux":
        # a supervisor killed outright must not leave its processes serving
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    settings = Settings.from_env()
    logs.configure(level=settings.log_level, fmt=settings.log_format)
    GuardedHttpProtocol.header_timeout_s = settings.header_timeout_s
    return create_app(settings, settle=True)
