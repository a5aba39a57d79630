"""Settings from ``TSGATE_*`` environment variables: one URL per seam, plus policy knobs.

Nothing reads the environment at import; ``Settings.from_env()`` is called by the CLI
and the app factory, and tests build ``Settings(...)`` directly. The variables are
converted by ``msgspec.convert`` to each field's type and checked against its bounds; a
bad value is a :class:`ConfigError` naming the variable and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from tsgate.errors import ConfigError

ENV_PREFIX = "TSGATE_"
DAY_S = 86_400.0

# bounds shared by many options; every float has an upper bound, so inf and nan fail
Seconds = Annotated[float, msgspec.Meta(ge=0, le=366 * DAY_S)]
Positive_s = Annotated[float, msgspec.Meta(gt=0, le=366 * DAY_S)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@dataclass(frozen=True)
class Settings:
    # where to listen
    host: str = "127.0.0.1"
    port: Port = 8080
    # server processes sharing the port (`tsgate serve --workers N` sets it for each)
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    # one URL per seam (DESIGN §6)
    upstream_url: str = "sim://?seed=1"
    objects_url: str = "file://./var/objects"
    database_url: str = "sqlite:///./var/tsgate.db"
    # PostgreSQL streaming replicas for reads that may be slightly stale (comma-separated)
    database_read_url: tuple[str, ...] = ()
    replica_max_lag_s: Seconds = 5.0  # a replica lagging more is skipped
    # psycopg's server-side prepared statements; false behind PgBouncer in transaction mode
    database_prepare: bool = True
    cache_url: str = "memory://"
    queue_url: str = "memory://"
    # a server-side token used when a request brings none (demo / single-tenant); never logged
    upstream_token: str | None = field(default=None, repr=False)
    # upstream client policy
    upstream_timeout_s: Positive_s = 60.0
    upstream_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    upstream_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 4
    upstream_backoff_s: Seconds = 0.5
    upstream_backoff_cap_s: Seconds = 10.0
    upstream_page_size: AtLeastOne = 50000
    # the request planner's cost model until measured: upstream's latency per request and
    # its transfer time per sample; one request carries at most about request_samples
    upstream_latency_ms: Annotated[float, msgspec.Meta(ge=0)] = 200.0
    upstream_sample_us: Annotated[float, msgspec.Meta(ge=0)] = 100.0
    upstream_request_samples: AtLeastOne = 20_000
    upstream_measure_costs: bool = True  # false: plan by the two figures above only
    breaker_failures: Count = 5  # consecutive failed upstream calls that open the circuit
    breaker_reset_s: Positive_s = 30.0  # how long the circuit stays open before a trial call
    # cache policy
    settle_s: Seconds = 7200.0
    open_ttl_s: Seconds = 60.0
    # a fetch near "now" trusts only what lies further back than this (late-visible samples)
    lookback_s: Seconds = 900.0
    # re-checks of a period with holes, after its end (e.g. a gateway's late backlog)
    recheck_after: str = "2h,6h,1d,3d,7d"
    recheck_interval_s: Seconds = 300.0  # how often due re-checks run in the server; 0: never
    memory_cache_bytes: Count = 256 << 20
    site_stream_min_points: AtLeastOne = 40
    auto_migrate: bool = True
    access_ttl_s: Seconds = 300.0  # how long a token's access to a site is trusted
    access_deny_ttl_s: Seconds = 60.0  # how long upstream's 401/403/404 for a token is kept
    points_ttl_s: Seconds = 3600.0  # how long the cached point catalog of a site is fresh
    # site=Zone entries: a site's IANA zone, overriding the one found from its coordinates
    site_zones: tuple[str, ...] = ()
    # point=kind[:mode] entries: a point's kind (analog|binary|multistate) and sampling
    # mode (sampled|cov), overriding what its BACnet object type and tags say
    point_kinds: tuple[str, ...] = ()
    max_inline_samples: AtLeastOne = 5_000_000  # raw samples one chart response may carry
    # a chart needing more upstream samples than this becomes a job (202); 0: never
    inline_fetch_samples: Count = 1_000_000
    # responses
    cors_origins: tuple[str, ...] = ("*",)
    compress_min_bytes: Count = 1024
    # protection: per caller and route class; 0 disables rate limiting
    rate_limit_per_min: Count = 600
    rate_limit_burst: Count = 100
    # salt for token hashes (rate limits, scopes, cache keys); unset: derived from the
    # secret, which is generated once and kept in the database when it is unset too
    token_salt: str | None = field(default=None, repr=False)
    max_body_bytes: AtLeastOne = 1 << 20
    # the header a trusted reverse proxy puts the client's address in (its last entry)
    trusted_proxy_header: str | None = None
    max_charts_per_caller: Count = 1000  # saved charts one token may keep; 0: no limit
    max_open_jobs_per_caller: Count = 20  # queued, running or failed jobs per token; 0: no limit
    # live streams (GET /api/timeseries/stream): open ones per caller and in the process,
    # the shortest poll interval, heartbeat comments, and when a stream ends by itself
    live_viewers_per_caller: AtLeastOne = 8
    live_max_viewers: AtLeastOne = 1000
    live_min_poll_s: Positive_s = 10.0
    live_poll_s: Seconds = 0.0  # the poll interval; 0: the points' collect interval
    live_heartbeat_s: Positive_s = 15.0
    live_idle_s: Positive_s = 1800.0  # nothing new pushed for this long
    live_max_s: Positive_s = 3600.0  # a stream's whole life (a client reconnects)
    live_buffer_events: AtLeastOne = 64  # pushes a slow client may lag before it is dropped
    chart_ttl_s: Seconds = 180 * DAY_S  # saved charts unused this long are deleted; 0: kept
    # maintenance keeps the saved charts used in the last N days cached (with
    # TSGATE_UPSTREAM_TOKEN), that many units at once; 0 days: it does not
    warm_charts_days: Annotated[float, msgspec.Meta(ge=0, le=366)] = 0.0
    warm_charts_concurrency: AtLeastOne = 2
    # maintenance writes each finished UTC day's report to reports/daily/<day>.json
    daily_report_objects: bool = False
    header_timeout_s: Positive_s = 5.0  # a connection must finish its request headers by then
    shutdown_timeout_s: Positive_s = 10.0  # in-flight requests get this long on SIGTERM
    max_active_requests: Count = 64  # worked on at once; more wait their turn; 0: no limit
    max_points_per_request: AtLeastOne = 500
    max_range_days: AtLeastOne = 1100
    # user files (POST /api/files): size of one, and what one token may keep; 0: no limit
    max_file_bytes: AtLeastOne = 20 << 20
    max_files_per_caller: Count = 1000
    max_file_bytes_per_caller: Count = 1 << 30
    upload_timeout_s: Positive_s = 120.0  # an upload's body must arrive within this
    # POST /api/cache/invalidate needs this in X-Admin-Key (unset: the endpoint refuses)
    admin_key: str | None = field(default=None, repr=False)
    # operations
    log_level: LogLevel = "info"
    log_format: Literal["json", "text"] = "json"  # json (one object per line) | text
    health_timeout_s: Positive_s = 3.0
    stats_flush_s: Positive_s = 2.0
    stats_retention_days: Annotated[float, msgspec.Meta(gt=0, le=36600)] = 30.0
    maintenance_interval_s: Seconds = 3600.0  # 0: only `tsgate cleanup`
    alert_db_bytes: Count = 0  # 0: no alert
    alert_store_bytes: Count = 0
    # monitoring history and alert rules (tsgate.ops.rules: metric=warning/critical)
    monitor_interval_s: Seconds = 300.0  # a sample between maintenance passes; 0: only then
    monitor_retention_days: Annotated[float, msgspec.Meta(gt=0, le=36600)] = 30.0
    alert_rules: str = ""  # none: thresholds depend on the deployment (see docs/operations.md)
    # background jobs
    secret: str | None = field(default=None, repr=False)  # seals job tokens, signs webhooks
    inline_worker: bool = True  # run a worker inside the server (embedded default)
    job_lease_s: Positive_s = 30.0
    job_heartbeat_s: Positive_s = 5.0
    job_poll_s: Positive_s = 1.0
    job_retry_base_s: Seconds = 2.0
    job_retry_factor: Annotated[float, msgspec.Meta(ge=1, le=100)] = 2.0
    job_retry_cap_s: Seconds = 300.0
    job_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    job_retention_s: Seconds = 7 * DAY_S
    webhook_allow_private: bool = False
    webhook_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    webhook_timeout_s: Positive_s = 10.0
    webhook_concurrency: AtLeastOne = 16  # webhooks sent at once per worker
    webhook_per_host: AtLeastOne = 2  # of which at most this many to one host

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TSGATE_<FIELD>`` variables; ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _prepare(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(_explain(str(exc), values)) from exc


def _prepare(name: str, type_name: str, raw: str) -> Any:
    """The raw string in the shape ``msgspec.convert`` takes for the field's type."""
    if type_name.startswith("tuple"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r}: expected true or false")
    if type_name == "LogLevel":
        return raw.strip().lower()
    if "None" in type_name and not raw:
        return None  # an empty variable is an unset option
    return raw.strip()


def _explain(message: str, values: Mapping[str, Any]) -> str:
    # msgspec says "Expected `int` >= 1 - at `$.port`": name the variable and its value
    found = re.search(r" - at `\$\.(\w+)`", message)
    if found is None:
        return f"settings: {message}"
    name = found[1]
    hint = typing.get_type_hints(Settings, include_extras=True).get(name)
    expected = message[: found.start()].removeprefix("Expected ")
    if typing.get_origin(hint) is Literal:
        expected = "one of " + ", ".join(typing.get_args(hint))
    elif expected.endswith(", got `str`"):
        kind = expected.split("`")[1]
        expected = {"int": "an integer", "float": "a number"}.get(kind, kind)
    return f"{ENV_PREFIX}{name.upper()}={values.get(name)!r}: expected {expected.replace('`', '')}"


_DURATION_MS = {"s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def durations_ms(env_name: str, text: str) -> tuple[int, ...]:
    """``"2h,6h,1d"`` (or plain seconds, ``"7200,21600"``) as ascending milliseconds."""
    out: list[int] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        number = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(number) :] or "s"
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if unit not in _DURATION_MS or value <= 0:
            raise ConfigError(f"{env_name}={text!r}: {part!r} is not a duration like 90s, 2h or 7d")
        out.append(int(value * _DURATION_MS[unit]))
    if out != sorted(set(out)):
        raise ConfigError(f"{env_name}={text!r}: durations must be ascending")
    return tuple(out)
