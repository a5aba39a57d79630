"""The read policy's options: the cache policy, the limits of one read, live streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsgate.options import AtLeastOne, Count, PositiveSeconds, Seconds, durations_ms

if TYPE_CHECKING:
    from tsgate.core.kinds import PointKinds


@dataclass(frozen=True)
class CacheSettings:
    settle_s: Seconds = 7200.0
    open_ttl_s: Seconds = 60.0
    # a fetch near "now" trusts only what lies further back than this (late-visible samples)
    lookback_s: Seconds = 900.0
    # re-checks of a period with holes, after its end (e.g. a gateway's late backlog)
    recheck_after: str = "2h,6h,1d,3d,7d"
    recheck_interval_s: Seconds = 300.0  # how often due re-checks run in the server; 0: never
    memory_cache_bytes: Count = 256 << 20
    site_stream_min_points: AtLeastOne = 40
    access_ttl_s: Seconds = 300.0  # how long a token's access to a site is trusted
    access_deny_ttl_s: Seconds = 60.0  # how long upstream's 401/403/404 for a token is kept
    points_ttl_s: Seconds = 3600.0  # how long the cached point catalog of a site is fresh
    # site=Zone entries: a site's IANA zone, overriding the one found from its coordinates
    site_zones: tuple[str, ...] = ()
    # point=kind[:mode] entries: a point's kind (analog|binary|multistate) and sampling
    # mode (sampled|cov), overriding what its BACnet object type and tags say
    point_kinds: tuple[str, ...] = ()
    # the shortest silence of a point reporting on change (COV, binary, multistate) that
    # is a gap in its data (its limit is otherwise 1.5 heartbeats)
    cov_gap_floor_s: Seconds = 900.0

    def __post_init__(self) -> None:
        # what a type cannot check fails when the settings are read, not when first used
        self.recheck_schedule_ms()
        self.zone_overrides()
        self.point_kind_overrides()

    def recheck_schedule_ms(self) -> tuple[int, ...]:
        return durations_ms("TSGATE_RECHECK_AFTER", self.recheck_after)

    # imported when called: reading the settings (the CLI's first step) loads no numpy
    def zone_overrides(self) -> dict[str, str]:
        from tsgate.series.zones import parse_overrides

        return parse_overrides(self.site_zones)

    def point_kind_overrides(self) -> PointKinds:
        from tsgate.core.kinds import PointKinds

        return PointKinds.parse(self.point_kinds)


@dataclass(frozen=True)
class ReadLimits:
    """What one request may ask for (the chart API, the drop-in paths, PromQL)."""

    max_points_per_request: AtLeastOne = 500
    max_range_days: AtLeastOne = 1100
    max_inline_samples: AtLeastOne = 5_000_000  # raw samples one chart response may carry
    # a chart needing more upstream samples than this becomes a job (202); 0: never
    inline_fetch_samples: Count = 1_000_000


@dataclass(frozen=True)
class LiveSettings:
    """Live streams (GET /api/timeseries/stream): open ones per caller and in the process,
    the shortest poll interval, heartbeat comments, and when a stream ends by itself."""

    live_viewers_per_caller: AtLeastOne = 8
    live_max_viewers: AtLeastOne = 1000
    live_min_poll_s: PositiveSeconds = 10.0
    live_poll_s: Seconds = 0.0  # the poll interval; 0: the points' collect interval
    live_heartbeat_s: PositiveSeconds = 15.0
    live_idle_s: PositiveSeconds = 1800.0  # nothing new pushed for this long
    live_max_s: PositiveSeconds = 3600.0  # a stream's whole life (a client reconnects)
    live_buffer_events: AtLeastOne = 64  # pushes a slow client may lag before it is dropped
