"""Settings from ``TSGATE_*`` environment variables: one URL per seam, plus policy knobs.

Nothing reads the environment at import; ``Settings.from_env()`` is called by the CLI
and the app factory, and tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsgate.errors import ConfigError

ENV_PREFIX = "TSGATE_"


@dataclass(frozen=True)
class Settings:
    # where to listen
    host: str = "127.0.0.1"
    port: int = 8080
    # one URL per seam (DESIGN §6)
    upstream_url: str = "sim://?seed=1"
    objects_url: str = "file://./var/objects"
    database_url: str = "sqlite:///./var/tsgate.db"
    cache_url: str = "memory://"
    queue_url: str = "memory://"
    # a server-side token used when a request brings none (demo / single-tenant); never logged
    upstream_token: str | None = field(default=None, repr=False)
    # upstream client policy
    upstream_timeout_s: float = 60.0
    upstream_concurrency: int = 8
    upstream_retries: int = 4
    upstream_backoff_s: float = 0.5
    upstream_backoff_cap_s: float = 10.0
    upstream_page_size: int = 50000
    breaker_failures: int = 5  # consecutive failed upstream calls that open the circuit
    breaker_reset_s: float = 30.0  # how long the circuit stays open before a trial call
    # cache policy
    settle_s: float = 7200.0
    open_ttl_s: float = 60.0
    memory_cache_bytes: int = 256 << 20
    site_stream_min_points: int = 40
    auto_migrate: bool = True
    access_ttl_s: float = 300.0  # how long a token's access to a site is trusted
    access_deny_ttl_s: float = 60.0  # how long upstream's 401/403/404 for a token is kept
    points_ttl_s: float = 3600.0  # how long the cached point catalog of a site is fresh
    max_inline_samples: int = 5_000_000  # raw samples one chart response may carry
    # a chart needing more upstream samples than this becomes a job (202); 0: never
    inline_fetch_samples: int = 1_000_000
    # responses
    cors_origins: tuple[str, ...] = ("*",)
    compress_min_bytes: int = 1024
    # protection: per caller and route class; 0 disables rate limiting
    rate_limit_per_min: int = 600
    rate_limit_burst: int = 100
    # salt for token hashes (rate limits, scopes, cache keys); unset: derived from the
    # secret, which is generated once and kept in the database when it is unset too
    token_salt: str | None = field(default=None, repr=False)
    max_body_bytes: int = 1 << 20
    # the header a trusted reverse proxy puts the client's address in (its last entry)
    trusted_proxy_header: str | None = None
    max_charts_per_caller: int = 1000  # saved charts one token may keep; 0: no limit
    max_open_jobs_per_caller: int = 20  # queued, running or failed jobs per token; 0: no limit
    chart_ttl_s: float = 180 * 86400.0  # saved charts unused this long are deleted; 0: kept
    header_timeout_s: float = 5.0  # a connection must finish its request headers by then
    shutdown_timeout_s: float = 10.0  # in-flight requests get this long on SIGTERM
    max_active_requests: int = 64  # worked on at once; more wait their turn; 0: no limit
    max_points_per_request: int = 500
    max_range_days: int = 1100
    # POST /api/cache/invalidate needs this in X-Admin-Key (unset: the endpoint refuses)
    admin_key: str | None = field(default=None, repr=False)
    # operations
    log_level: str = "info"
    log_format: str = "json"  # json (one object per line) | text
    health_timeout_s: float = 3.0
    stats_flush_s: float = 2.0
    stats_retention_days: float = 30.0
    maintenance_interval_s: float = 3600.0  # 0: only `tsgate cleanup`
    alert_db_bytes: int = 0  # 0: no alert
    alert_store_bytes: int = 0
    # background jobs
    secret: str | None = field(default=None, repr=False)  # seals job tokens, signs webhooks
    inline_worker: bool = True  # run a worker inside the server (embedded default)
    job_lease_s: float = 30.0
    job_heartbeat_s: float = 5.0
    job_poll_s: float = 1.0
    job_retry_base_s: float = 2.0
    job_retry_factor: float = 2.0
    job_retry_cap_s: float = 300.0
    job_max_attempts: int = 5
    job_retention_s: float = 7 * 86400.0
    webhook_allow_private: bool = False
    webhook_retries: int = 3
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 16  # webhooks sent at once per worker
    webhook_per_host: int = 2  # of which at most this many to one host

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TSGATE_<FIELD>`` variables; ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _convert(name: str, type_name: str, raw: str) -> Any:
    env_name = ENV_PREFIX + name.upper()
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            return _parse_bool(raw)
        if type_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{env_name}={raw!r}: expected {type_name}") from exc
    return raw or None if "None" in type_name else raw


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)
