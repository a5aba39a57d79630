"""``tsgate warm``: fetch a site's points (or a saved chart's) into the cache for a range,
with a progress bar on stderr and a JSON report on stdout (see :mod:`tsgate.ops.warm`)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from tsgate.ops.warm import Unit, WarmReport, plan_units, warm

if TYPE_CHECKING:
    from tsgate.services import Services
    from tsgate.settings import Settings


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "warm", help="fetch a site's points (or a saved chart's) into the cache for a range"
    )
    cmd.add_argument("--site", help="the site (not needed with --chart)")
    cmd.add_argument("--points", default="", help="comma-separated point names")
    cmd.add_argument("--q", default=None, help="points whose name contains this")
    cmd.add_argument("--tags", default="", help="comma-separated tags the points must carry")
    cmd.add_argument("--chart", default=None, help="a saved chart's id: its site and points")
    cmd.add_argument("--start", required=True, help="ISO 8601 (UTC), e.g. 2025-01-01")
    cmd.add_argument("--end", default=None, help="ISO 8601 (UTC); default now")
    cmd.add_argument("--concurrency", type=int, default=4, help="units fetched at once")
    cmd.add_argument("--batch", type=int, default=50, help="points per unit")
    cmd.add_argument("--token", default=None, help="ACE token (default TSGATE_UPSTREAM_TOKEN)")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys

    from tsgate.errors import TsgateError
    from tsgate.settings import Settings

    # one pass here: no maintenance, no inline worker competing for the upstream
    settings = dataclasses.replace(
        Settings.from_env(), maintenance_interval_s=0, inline_worker=False
    )
    token = args.token or settings.upstream_token
    if not token:
        print("tsgate warm: no token (--token or TSGATE_UPSTREAM_TOKEN)", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_warm(args, settings, token))
    except TsgateError as exc:
        print(f"tsgate warm: {exc.detail}", file=sys.stderr)
        return 1
    print(
        f"tsgate warm: {report.units - report.already_cached} of {report.units} units fetched, "
        f"{report.already_cached} were cached already",
        file=sys.stderr,
    )
    print(json.dumps(dataclasses.asdict(report), indent=2), flush=True)
    return 1 if report.failed else 0


async def _targets(
    args: argparse.Namespace, services: Services, token: str
) -> tuple[str, list[str]]:
    from tsgate.errors import BadParameter, NotFound

    if args.chart:
        chart = await services.charts.get(services.access.scope(token), args.chart)
        if chart is None:
            raise NotFound(f"no saved chart {args.chart!r} for this token")
        return str(chart.config["site"]), [str(p) for p in chart.config["points"]]
    if not args.site:
        raise BadParameter("site", "is required (or --chart)")
    listed = [p.strip() for p in args.points.split(",") if p.strip()]
    if listed:
        return args.site, listed
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    found = await services.catalog.search(args.site, token, args.q or "", tags, 1_000_000)
    names = [p["name"] for p in found if p.get("collect_enabled")]
    if not names:
        raise BadParameter("q", f"no collecting point of {args.site!r} matches")
    return args.site, names


async def _warm(args: argparse.Namespace, settings: Settings, token: str) -> WarmReport:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tsgate.wire.ace import parse_time
    from tsgate.wiring import open_services

    async with open_services(settings) as services:
        site, names = await _targets(args, services, token)
        start_ms = parse_time("start", args.start)
        end_ms = parse_time("end", args.end) if args.end else services.clock_ms()
        units = plan_units(names, start_ms, end_ms, args.batch)
        progress = Progress(
            TextColumn(f"[bold]warm {site}[/] {len(names)} points"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[cached]} cached"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=args.no_progress,
        )
        task = progress.add_task("warm", total=len(units), cached=0)
        cached = 0

        def done(unit: Unit, fetched: bool) -> None:
            nonlocal cached
            cached += 0 if fetched else 1
            progress.update(task, advance=1, cached=cached)

        with progress:
            return await warm(
                services.series_reader,
                site,
                names,
                start_ms,
                end_ms,
                token=token,
                concurrency=args.concurrency,
                batch=args.batch,
                on_unit=done,
            )
