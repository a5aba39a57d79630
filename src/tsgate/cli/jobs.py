"""``tsgate worker``, ``tsgate jobs list|show|retry|cancel`` and ``tsgate migrate``.

The jobs commands are for operators: they act on the shared job store directly, across
every caller's scope, with the same ``TSGATE_*`` settings as servers and workers. What
they act on is built by the composition root (:mod:`tsgate.wiring`).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import signal
import sys

import msgspec

from tsgate.clock import wall_clock_ms
from tsgate.jobs.handlers import job_status
from tsgate.jobs.model import Job
from tsgate.jobs.store import JobStore
from tsgate.ops.logs import redact
from tsgate.settings import Settings
from tsgate.wiring import JobAdmin, migrate_database, open_job_admin, open_services

MAX_LISTED = 10_000
_PR_SET_PDEATHSIG = 1


async def run_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # the worker is the services' inline worker; leaving the block gives its job back.
    # Servers are other processes on the same stores: their data versions are shared.
    async with open_services(settings, shared_processes=True) as services:
        print(f"tsgate worker {services.worker.name} on {redact(settings.queue_url)}", flush=True)
        await stop.wait()


def _line(job: Job) -> str:
    req = job.request
    return (
        f"{job.id}  {job.state.value:<9} {job.progress:5.1f}%  attempts {job.attempts}"
        f"  {req.kind.value}/{req.format}  {req.site}  {len(req.points)} points"
        + (f"  error: {job.error}" if job.error else "")
    )


async def jobs_command(settings: Settings, args: argparse.Namespace) -> int:
    async with open_job_admin(settings) as admin:
        store = admin.store
        if args.action == "list":
            for listed in await store.list_jobs(state=args.status, limit=args.limit):
                print(_line(listed))
            return 0
        job = await store.get(args.job_id)
        if job is None:
            print(f"no job {args.job_id}")
            return 1
        if args.action == "retry":
            job = await store.retry(job.id, now_ms=wall_clock_ms()) or job
            await _wake(admin, job.id)
        elif args.action == "cancel":
            job = await store.cancel(job.id, now_ms=wall_clock_ms()) or job
        if args.action == "show" and args.follow:
            job = await _follow(store, job)
        print(msgspec.json.format(msgspec.json.encode(job_status(job))).decode())
        return 0


async def _wake(admin: JobAdmin, job_id: str) -> None:
    await admin.queue.publish(job_id)


async def _follow(store: JobStore, job: Job) -> Job:
    from rich.progress import Progress

    with Progress() as bar:
        task = bar.add_task(job.id, total=100)
        while not job.terminal:
            bar.update(task, completed=job.progress, description=_described(job))
            await asyncio.sleep(0.5)
            job = await store.get(job.id) or job
        bar.update(task, completed=job.progress, description=_described(job))
    return job


def _described(job: Job) -> str:
    """The job, its state, its samples done of those expected, and its parts ready."""
    shown = job_status(job)
    text = f"{job.id} {job.state.value} · {job.samples_done:,} "
    if job.samples_total:
        text += f"of {'' if job.terminal else 'about '}{job.samples_total:,} "
    text += "samples"
    if "partsTotal" in shown:
        text += f" · {shown['partsDone']} of {shown['partsTotal']} parts"
    return text


async def migrate_command(settings: Settings) -> int:
    await migrate_database(settings)
    print(f"database at head: {redact(settings.database_url)}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = sub.add_parser("worker", help="run jobs from TSGATE_DATABASE_URL/TSGATE_QUEUE_URL")
    worker.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop (as on SIGTERM) when the parent process dies (`tsgate serve` uses it)",
    )
    worker.set_defaults(func=_worker)
    jobs = sub.add_parser("jobs", help="list, show, retry or cancel background jobs")
    actions = jobs.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--status", default=None)
    listing.add_argument("--limit", type=_limit, default=100, help="1 to 10000 (default 100)")
    show = actions.add_parser("show")
    show.add_argument("job_id")
    show.add_argument("--follow", action="store_true", help="show progress until it ends")
    for name in ("retry", "cancel"):
        actions.add_parser(name).add_argument("job_id")
    jobs.set_defaults(func=_jobs)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=_migrate)


def _limit(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LISTED:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number from 1 to {MAX_LISTED}")
    return value


def _worker(args: argparse.Namespace) -> int:
    if args.exit_with_parent and sys.platform == "linux":
        # a server killed outright must not leave its job worker running
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    asyncio.run(run_worker(Settings.from_env(inline_worker=True)))
    return 0


def _jobs(args: argparse.Namespace) -> int:
    return asyncio.run(jobs_command(Settings.from_env(), args))


def _migrate(args: argparse.Namespace) -> int:
    return asyncio.run(migrate_command(Settings.from_env()))
