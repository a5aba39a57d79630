"""The command line: ``tsgate serve | simulate | worker | jobs | migrate | cleanup | verify |
warm | version`` (and the others each module registers).

With ``app`` the only other importer of :mod:`tsgate.wiring`, this package builds what
each command needs through the composition root; ``jobs`` holds the job commands, ``warm``
the cache warmer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tsgate import __version__
from tsgate.errors import ConfigError
from tsgate.ops import logs
from tsgate.ops.logs import redact
from tsgate.settings import Settings

MAX_WORKERS = 256


def _serve(args: argparse.Namespace) -> int:
    from tsgate.cli.serve import run

    return run(args)


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number from 1 to {MAX_WORKERS}")
    return value


def _simulate(args: argparse.Namespace) -> int:
    import uvicorn

    from tsgate.upstream.simulator import create_simulator

    sim = create_simulator(seed=args.seed, redirects=args.redirects, large_site=args.large_site)
    sim.faults.latency_s = args.latency_ms / 1000
    sim.faults.sample_cost_us = args.sample_cost_us
    sim.faults.visibility_delay_s = args.visibility_delay_s
    sim.faults.visibility_jitter_s = args.visibility_jitter_s
    print(f"ACE simulator (seed {args.seed}) at http://{args.host}:{args.port}/api", flush=True)
    uvicorn.run(sim, host=args.host, port=args.port, log_level=args.log_level, log_config=None)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import json

    from tsgate.clock import wall_clock_ms
    from tsgate.wiring import open_services

    # one pass here; no scheduler alongside it
    settings = dataclasses.replace(
        Settings.from_env(), maintenance_interval_s=0, recheck_interval_s=0
    )

    async def once() -> dict[str, object]:
        async with open_services(settings) as services:
            report = await services.maintenance.run(wall_clock_ms())
        return dataclasses.asdict(report)

    print(json.dumps(asyncio.run(once()), indent=2), flush=True)
    return 0


def _version(args: argparse.Namespace) -> int:
    print(__version__)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsgate", description="Timeseries gateway for ACE IoT data"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the gateway (settings from TSGATE_* variables)")
    serve.add_argument(
        "--host", default=None, help="listen address (TSGATE_HOST, default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=None, help="listen port (TSGATE_PORT, default 8080)"
    )
    serve.add_argument(
        "--demo", action="store_true", help="accept requests without a token (demo token)"
    )
    serve.add_argument(
        "--log-level",
        default=None,
        help="debug|info|warning|error (TSGATE_LOG_LEVEL, default info)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="server processes sharing the port (TSGATE_WORKERS, default one per CPU)",
    )
    serve.set_defaults(func=_serve)
    sim = sub.add_parser("simulate", help="serve the ACE API simulator standalone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8081)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    sim.add_argument(
        "--sample-cost-us",
        type=float,
        default=0.0,
        help="added transfer time per sample served (the real API: about 100)",
    )
    sim.add_argument(
        "--visibility-delay-s", type=float, default=0.0, help="a sample appears this long after"
    )
    sim.add_argument(
        "--visibility-jitter-s", type=float, default=0.0, help="… plus a random 0 to this"
    )
    sim.add_argument(
        "--large-site",
        action="store_true",
        help="add the site large_campus (about 3,500 collecting points, for benchmarks)",
    )
    sim.add_argument(
        "--redirects",
        choices=("none", "flask"),
        default="none",
        help="flask: answer /sites (not /sites/) with a 308, as a Flask-RESTX upstream does",
    )
    sim.add_argument("--log-level", default="warning")
    sim.set_defaults(func=_simulate)
    cleanup = sub.add_parser(
        "cleanup", help="trim old request stats, measure the stores, report size alerts"
    )
    cleanup.set_defaults(func=_cleanup)
    from tsgate.cli.jobs import add_commands
    from tsgate.cli.warm import add_command as add_warm

    add_commands(sub)
    add_warm(sub)
    from tsgate.cli.verify import add_command as add_verify

    add_verify(sub)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(
            level=getattr(args, "log_level", None) or settings.log_level, fmt=settings.log_format
        )
    except ConfigError as exc:
        print(redact(f"tsgate: {exc}"), file=sys.stderr)
        return 2
    result: int = args.func(args)
    return result
