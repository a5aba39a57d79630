"""Settings from ``TSGATE_*`` environment variables: one URL per seam, plus policy knobs.

Each component owns the struct of its options, with their bounds (``upstream/options.py``,
``series/options.py``: the cache policy, the read limits and live streams,
``jobs/options.py``, ``files/options.py``, ``ops/options.py``: logs and maintenance);
:class:`Settings` composes them with the server's own, and a component is given only its
struct. A field's variable is ``TSGATE_`` and its name in capitals.

Nothing reads the environment at import; ``Settings.from_env()`` is called by the CLI
and the app factory, and tests build ``Settings(...)`` directly. The variables are
converted by ``msgspec.convert`` to each field's type and checked against its bounds; a
bad value is a :class:`ConfigError` naming the variable, its value and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from tsgate.errors import ConfigError
from tsgate.files.options import FileSettings
from tsgate.jobs.options import JobSettings
from tsgate.ops.options import MaintenanceSettings, OpsSettings
from tsgate.options import AtLeastOne, Count, Port, PositiveSeconds, Seconds
from tsgate.series.options import CacheSettings, LiveSettings, ReadLimits
from tsgate.upstream.options import UpstreamSettings

ENV_PREFIX = "TSGATE_"


@dataclass(frozen=True)
class ServerSettings:
    """The process's own options: where it listens, the URLs of its stores, the HTTP
    server's bounds and the protection of its routes."""

    host: str = "127.0.0.1"
    port: Port = 8080
    # server processes sharing the port (`tsgate serve --workers N` sets it for each)
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    # one URL per seam (docs/design.md)
    objects_url: str = "file://./var/objects"
    database_url: str = "sqlite:///./var/tsgate.db"
    # PostgreSQL streaming replicas for reads that may be slightly stale (comma-separated)
    database_read_url: tuple[str, ...] = ()
    replica_max_lag_s: Seconds = 5.0  # a replica lagging more is skipped
    # psycopg's server-side prepared statements; false behind PgBouncer in transaction mode
    database_prepare: bool = True
    cache_url: str = "memory://"
    queue_url: str = "memory://"
    auto_migrate: bool = True
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
    header_timeout_s: PositiveSeconds = 5.0  # a connection must finish its request headers by then
    shutdown_timeout_s: PositiveSeconds = 10.0  # in-flight requests get this long on SIGTERM
    max_active_requests: Count = 64  # worked on at once; more wait their turn; 0: no limit
    # POST /api/cache/invalidate needs this in X-Admin-Key (unset: the endpoint refuses)
    admin_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings(
    ServerSettings,
    UpstreamSettings,
    CacheSettings,
    ReadLimits,
    LiveSettings,
    FileSettings,
    JobSettings,
    OpsSettings,
    MaintenanceSettings,
):
    """Every option of the process: a ``Settings`` is each component's struct at once."""

    def __post_init__(self) -> None:
        # each component's own checks (a dataclass runs only the first one it inherits)
        for part in Settings.__bases__:
            check = vars(part).get("__post_init__")
            if check is not None:
                check(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``TSGATE_<FIELD>`` variables; ``overrides`` win."""
        env = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls, include_extras=True)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _prepare(f.name, hints[f.name], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(_explain(str(exc), values, hints)) from exc


def _bare(hint: Any) -> Any:
    """The type under ``Annotated[...]``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _prepare(name: str, hint: Any, raw: str) -> Any:
    """The raw string in the shape ``msgspec.convert`` takes for the field's type."""
    kind = _bare(hint)
    origin = typing.get_origin(kind)
    if origin is tuple:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r}: expected true or false")
    if origin is Literal:
        return raw.strip().lower()
    optional = origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)
    if optional and not raw.strip():
        return None  # an empty variable is an unset option
    return raw.strip()


def _explain(message: str, values: Mapping[str, Any], hints: Mapping[str, Any]) -> str:
    # msgspec says "Expected `int` >= 1 - at `$.port`": name the variable and its value
    found = re.search(r" - at `\$\.(\w+)`", message)
    if found is None:
        return f"settings: {message}"
    name = found[1]
    kind = _bare(hints.get(name))
    expected = message[: found.start()].removeprefix("Expected ")
    if typing.get_origin(kind) is Literal:
        expected = "one of " + ", ".join(typing.get_args(kind))
    elif expected.endswith(", got `str`"):
        kind_name = expected.split("`")[1]
        expected = {"int": "an integer", "float": "a number"}.get(kind_name, kind_name)
    return f"{ENV_PREFIX}{name.upper()}={values.get(name)!r}: expected {expected.replace('`', '')}"
