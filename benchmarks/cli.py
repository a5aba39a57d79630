"""``python -m benchmarks``: start the simulator and tsgate, run the scenarios, report."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType

import httpx

from benchmarks import (
    chart,
    dashboard,
    dropin,
    load,
    nginx,
    procs,
    progressive,
    prom,
    semantics,
    serving,
    storage,
    transfer,
    wirebytes,
)
from benchmarks.context import Bench, collecting_points, fmt_mib
from benchmarks.plan import FULL, QUICK
from benchmarks.report import (
    Report,
    Row,
    load_average,
    markdown_table,
    ratio,
    write_markdown,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SCENARIOS = (
    "dropin",
    "chart",
    "progressive",
    "dashboard",
    "wire",
    "load",
    "storage",
    "promql",
    "frame",
    "semantics",
    "nginx",
    "serving",
    "transfer",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark tsgate against the ACE simulator (each in its own process) "
        "and write the table to docs/benchmarks.md.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 90 s)")
    parser.add_argument(
        "--latency-ms", type=float, default=200.0, help="simulated upstream latency per request"
    )
    parser.add_argument(
        "--sample-cost-us",
        type=float,
        default=0.0,
        help="simulated upstream transfer time per sample served (the real API: about 100)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default: all of {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--site-stream-min-points",
        type=int,
        default=None,
        help="set TSGATE_SITE_STREAM_MIN_POINTS for the gateway (default: tsgate's own)",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md (default: yes for a full run, no with --quick)",
    )
    parser.add_argument("--output", type=Path, default=DOCS, help="where to write the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(SCENARIOS))
    if unknown:
        build_parser().error(f"unknown scenario(s) {unknown}; choose from {SCENARIOS}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the children are always stopped
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    report = Report()
    report.loads.append(load_average("at the start"))
    with tempfile.TemporaryDirectory(prefix="tsgate-bench-") as tmp:
        asyncio.run(_run(args, selected, report, Path(tmp)))
    elapsed_s = time.monotonic() - clock
    report.loads.append(load_average("at the end"))
    print(markdown_table(report.rows))
    for failure in report.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if args.write if args.write is not None else not args.quick:
        write_markdown(args.output, report, command=command, started=started, elapsed_s=elapsed_s)
        print(f"wrote {args.output}", file=sys.stderr)
    print(f"took {elapsed_s:.0f} s", file=sys.stderr)
    return 1 if report.failures else 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


async def _run(
    args: argparse.Namespace, selected: Sequence[str], report: Report, workdir: Path
) -> None:
    plan = QUICK if args.quick else FULL
    env = {
        "TSGATE_OPEN_TTL_S": "0",
        "TSGATE_RATE_LIMIT_PER_MIN": "10000000",
        "TSGATE_RATE_LIMIT_BURST": "1000000",
        # (a) measures the cold chart answered inline; by default it would become a job
        "TSGATE_INLINE_FETCH_SAMPLES": "0",
    }
    if args.site_stream_min_points is not None:
        env["TSGATE_SITE_STREAM_MIN_POINTS"] = str(args.site_stream_min_points)
    _log(f"starting the simulator ({args.latency_ms:g} ms per request) and tsgate in {workdir}")
    with procs.simulator(
        workdir,
        latency_ms=args.latency_ms,
        sample_cost_us=args.sample_cost_us,
        visibility_delay_s=plan.sim_visibility_delay_s,
        large_site="semantics" in selected,  # (g) assesses a site of 3,500 points
    ) as sim:
        upstream_url = sim.base_url + "/api"
        with procs.gateway(workdir, upstream_url=upstream_url, extra_env=env) as gw:
            async with httpx.AsyncClient(timeout=120.0) as http:
                gw.started_rss = gw.rss_bytes()
                bench = Bench(plan, gw.base_url, sim.base_url, http, [])
                bench.collecting = await collecting_points(http, sim.base_url)
                steps: dict[str, Callable[[], Awaitable[None]]] = {
                    "dropin": lambda: dropin.run(bench, report),
                    "chart": lambda: chart.run(bench, report, gw),
                    "progressive": lambda: progressive.run(bench, report),
                    "dashboard": lambda: dashboard.run(bench, report),
                    "wire": lambda: wirebytes.run(bench, report),
                    "load": lambda: load.run(bench, report, gw.proc.pid, workdir),
                    "storage": lambda: storage.run(report),
                    "promql": lambda: prom.run_promql(bench, report),
                    "frame": lambda: prom.run_frame(bench, report),
                    "semantics": lambda: semantics.run(bench, report),
                    "nginx": lambda: nginx.run(bench, report, workdir),
                    "serving": lambda: serving.run_workers(bench, report, gw, workdir, env),
                    "transfer": lambda: transfer.run(bench, report, workdir, env, args.latency_ms),
                }
                for name in selected:
                    await _guarded(name, steps[name], report, gw)
            report.add(memory_rows(gw, sim, workdir / "data", report.peaks))
    report.notes[:0] = _setup_notes(args, env)


async def _guarded(
    name: str, step: Callable[[], Awaitable[None]], report: Report, gw: procs.Child
) -> None:
    """Run one scenario; a failure is reported and the next scenario still runs."""
    _log(f"scenario {name} …")
    started = time.monotonic()
    procs.reset_peak_rss(gw.proc.pid)
    try:
        await step()
    except (Exception, TimeoutError) as exc:
        detail = f"{name}: {type(exc).__name__}: {exc}"[:500]
        report.failures.append(detail)
        report.add([Row(name, "FAILED", type(exc).__name__)])
        if gw.proc.poll() is not None:
            report.failures.append(f"tsgate exited:\n{gw.log_tail()}")
    report.peaks[name] = gw.peak_rss_bytes()
    _log(f"scenario {name} took {time.monotonic() - started:.1f} s")


def memory_rows(
    gw: procs.Child, sim: procs.Child, data_dir: Path, peaks: dict[str, int | None]
) -> list[Row]:
    label = "(d) after the scenarios"
    store = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    return [
        *(
            Row(
                "(d) peak RSS per scenario",
                f"tsgate (VmHWM) during {name}; baseline: its "
                "resident memory before the first scenario",
                fmt_mib(peak),
                fmt_mib(gw.started_rss),
                ratio(gw.started_rss or 0, peak or 0),
            )
            for name, peak in peaks.items()
        ),
        Row(label, "simulator peak RSS (VmHWM), for scale", fmt_mib(sim.peak_rss_bytes())),
        Row(label, "tsgate data on disk (SQLite + objects)", fmt_mib(store)),
    ]


def _setup_notes(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    settings = ", ".join(f"`{k}={v}`" for k, v in env.items())
    return [
        f"Setup: `tsgate simulate --latency-ms {args.latency_ms:g}"
        f" --sample-cost-us {args.sample_cost_us:g}` and `tsgate serve --workers 1` as two "
        "processes on loopback, a fresh temporary SQLite database and object folder, "
        f"server-side token; gateway settings {settings}, the rest default. The benchmark "
        "client is a third process on the same cores. Ratios are baseline / tsgate "
        "(higher is better for tsgate); goals are targets, not tests.",
    ]


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
