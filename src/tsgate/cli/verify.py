"""``tsgate verify --site S [--points a,b] --start --end [--repair]``.

Exit status: 0 when the cache equals upstream (after ``--repair``: once repaired),
1 when differences are found (or remain), 2 for bad arguments or an upstream refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tsgate.api.responses import RESPONSES
from tsgate.errors import RequestError, TsgateError
from tsgate.series.verify import VerifyReport, repair, verify
from tsgate.settings import Settings
from tsgate.wire.ace import format_time, parse_range

if TYPE_CHECKING:
    from tsgate.services import Services
    from tsgate.upstream.guarded import GuardedUpstream
    from tsgate.wiring import OpenedServices

SIM_TOKEN = "verify"  # noqa: S105 - the built-in simulator accepts any token
MAX_ROWS = 50  # differences listed one by one; the rest are counted


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="compare the cache with upstream per point-day (counts, hashes); --repair fixes it",
    )
    p.add_argument("--site", required=True)
    p.add_argument("--points", default="", help="comma-separated (default: every cached point)")
    p.add_argument("--start", required=True, help="ISO 8601, zone-less means UTC")
    p.add_argument("--end", required=True, help="ISO 8601; the range is [start, end)")
    p.add_argument("--repair", action="store_true", help="drop what differs and fetch it again")
    p.add_argument("--token", default=None, help="the ACE token (default TSGATE_UPSTREAM_TOKEN)")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    settings = Settings.from_env()
    try:
        start_ms, end_ms = parse_range(args.start, args.end, names=("--start", "--end"))
    except RequestError as exc:
        console.print(f"tsgate verify: {exc}")
        return 2
    token = args.token or settings.upstream_token
    if token is None and settings.upstream_url.startswith("sim://"):
        token = SIM_TOKEN
    if not token:
        console.print("tsgate verify: a token is needed (--token or TSGATE_UPSTREAM_TOKEN)")
        return 2
    points = [p.strip() for p in args.points.split(",") if p.strip()]
    return asyncio.run(
        run_verify(
            settings, args.site, points, start_ms, end_ms, token=token, fix=args.repair,
            console=console,
        )
    )  # fmt: skip


async def run_verify(
    settings: Settings,
    site: str,
    points: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    token: str,
    fix: bool,
    console: Console,
    upstream: GuardedUpstream | None = None,
    clock_ms: Callable[[], int] | None = None,
) -> int:
    """Verify (and with ``fix`` repair, then verify again); return the exit status."""
    from tsgate.wiring import open_services

    quiet = dataclasses.replace(settings, maintenance_interval_s=0, inline_worker=False)
    try:
        async with open_services(quiet, upstream=upstream, clock_ms=clock_ms) as services:
            names = list(points) or await _cached_points(services, site, start_ms, end_ms, token)
            report = await _checked(services, console, site, names, start_ms, end_ms, token)
            render(console, report)
            if not (fix and report.differences):
                return 1 if report.differences else 0
            now = (clock_ms or services.clock_ms)()
            repaired = await repair(services.series_reader, report, token=token, now_ms=now)
            # cached answers (shared through redis://) were made from the damaged chunks;
            # as POST /api/cache/invalidate drops them
            await RESPONSES.clear(services.cache)
            console.print(f"repaired {repaired} point-days: dropped and fetched again")
            again = await _checked(services, console, site, names, start_ms, end_ms, token)
            render(console, again, title="after repair")
            return 1 if again.differences else 0
    except TsgateError as exc:
        console.print(f"tsgate verify: {exc}")
        return 2


async def _cached_points(
    services: Services, site: str, start_ms: int, end_ms: int, token: str
) -> list[str]:
    """The site's points with any chunk cached in the range."""
    await services.catalog.fresh(site, token)
    names = await services.points.names(site, collect_enabled_only=False)
    rows = await services.reader.rows(site, names, start_ms, end_ms)
    return sorted({r.point for r in rows})


async def _checked(
    services: OpenedServices,
    console: Console,
    site: str,
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
    token: str,
) -> VerifyReport:
    columns = (
        TextColumn("verifying {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(site, total=len(names))
        return await verify(
            services.series_reader.store,
            services.upstream,
            site,
            names,
            start_ms,
            end_ms,
            token=token,
            progress=lambda done, _: bar.update(task, completed=done),
        )


def render(console: Console, report: VerifyReport, *, title: str = "verify") -> None:
    if report.differences:
        console.print(f"[bold]{title}: {report.site} — point-days that differ from upstream[/]")
        for d in report.differences[:MAX_ROWS]:
            cached = "unreadable" if d.cached < 0 else f"{d.cached} cached"
            same = "same hash" if d.cached_hash == d.upstream_hash else "hash differs"
            console.print(
                f"  {d.point}  {format_time(d.start_ms)[:16]} → {format_time(d.end_ms)[:16]}"
                f"  {cached}, {d.upstream} upstream, {same}",
                soft_wrap=True,
                highlight=False,
            )
        if len(report.differences) > MAX_ROWS:
            console.print(f"… and {len(report.differences) - MAX_ROWS} more")
    console.print(
        f"{title}: {report.site} {format_time(report.start_ms)[:19]} → "
        f"{format_time(report.end_ms)[:19]}: {report.points} points, {report.days} point-days, "
        f"{report.cached_samples:,} cached and {report.upstream_samples:,} upstream samples, "
        f"{len(report.differences)} differences",
        soft_wrap=True,  # one line, whatever the terminal's width: scripts grep it
    )
