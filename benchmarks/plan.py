"""What a run measures: sizes, counts and time limits of each scenario (full or quick)."""

from __future__ import annotations

from dataclasses import dataclass

SITE = "demo_campus"


@dataclass(frozen=True)
class Plan:
    # (a) a chart of many points over a long range
    chart_points: int = 50
    chart_days: int = 365
    chart_max_points: int = 2000
    chart_warm_repeats: int = 5
    chart_timeout_s: float = 240.0
    quarter_days: int = 90  # the same chart over a shorter range, cold (0: not measured)
    # (b) a sliding 24 h dashboard
    dash_points: int = 20
    dash_refreshes: int = 40
    dash_interval_s: float = 8.0  # 40 × 8 s: more than a 5-minute sweep, so bursts arrive
    dash_baseline_refreshes: int = 5
    dash_timeout_s: float = 480.0
    # (c) bytes on the wire
    wire_points: int = 20
    wire_days: int = 7
    wire_timeout_s: float = 90.0
    # (e) a cached small query under load
    load_requests: int = 5000
    load_connections: int = 100
    load_time_limit_s: float = 30.0
    native_load_s: float = 10.0  # how long wrk loads, when installed, instead of a count
    # (f) the same under 1,000 concurrent connections: no errors, tail latency
    stress_requests: int = 10000
    stress_connections: int = 1000
    # (g) the drop-in site stream, one whole day per page size
    dropin_page_sizes: tuple[int, ...] = (50000, 10000)
    dropin_warm_repeats: int = 3
    dropin_timeout_s: float = 300.0
    # (h) an aligned frame of an air handler and its boxes
    frame_points: int = 21
    frame_days: int = 30
    # (t) a transfer-bound upstream: the drop-in stream and a chart, cold
    transfer_stream_hours: int = 3
    transfer_page_size: int = 10000
    transfer_chart_points: int = 20
    transfer_chart_days: int = 30
    transfer_timeout_s: float = 180.0
    # the window ends this many whole days before today (UTC): settled, sealed history
    end_days_ago: int = 3
    # the simulator shows each sample this long after its time (late visibility)
    sim_visibility_delay_s: float = 30.0


FULL = Plan()
QUICK = Plan(
    chart_points=20,
    chart_days=30,
    chart_warm_repeats=3,
    chart_timeout_s=60.0,
    quarter_days=0,
    dash_refreshes=12,
    dash_interval_s=5.0,
    dash_baseline_refreshes=2,
    dash_timeout_s=120.0,
    wire_days=1,
    wire_timeout_s=30.0,
    load_requests=5000,  # fewer are over in a tenth of a second: too short for a rate
    load_time_limit_s=10.0,
    native_load_s=4.0,
    stress_requests=2000,
    dropin_page_sizes=(50000,),
    dropin_warm_repeats=1,
    dropin_timeout_s=120.0,
    frame_days=7,
    transfer_stream_hours=1,
    transfer_chart_points=5,
    transfer_chart_days=7,
    transfer_timeout_s=60.0,
)
