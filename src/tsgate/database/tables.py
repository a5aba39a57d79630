"""The SQL schema as SQLAlchemy Core tables.

This is what the repositories query. The alembic revisions under ``migrations/`` create
the same schema as frozen steps; a contract test compares the two so they cannot drift.
Times are integer UTC milliseconds (BigInteger) everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa

# Named constraints keep batch (SQLite table-rebuild) migrations deterministic.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``, never a BIGINT one.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("point", sa.Text, primary_key=True),
    sa.Column("resolution", sa.Text, primary_key=True),
    sa.Column("period_start_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("period_end_ms", sa.BigInteger, nullable=False),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    # fetched and trusted ranges of the period, "start:end,start:end" (tsgate.series.index)
    sa.Column("coverage", sa.Text, nullable=False),
    sa.Column("tail_start_ms", sa.BigInteger, nullable=False),
    sa.Column("tail_end_ms", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("holes", sa.Text, nullable=False),
    sa.Column("rechecks", sa.Integer, nullable=False),
    sa.Column("recheck_at_ms", sa.BigInteger, nullable=True),
    sa.Column("samples", sa.BigInteger, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("first_ms", sa.BigInteger, nullable=True),
    sa.Column("last_ms", sa.BigInteger, nullable=True),
    sa.Column("fetched_at_ms", sa.BigInteger, nullable=False),
    sa.CheckConstraint("resolution IN ('raw', '5min')", name="resolution"),
    sa.CheckConstraint("period_end_ms > period_start_ms", name="period"),
    sa.CheckConstraint("state IN ('open', 'provisional', 'final')", name="state"),
    sa.Index("ix_chunks_state_recheck_at_ms", "state", "recheck_at_ms"),
)

points = sa.Table(
    "points",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("collect_enabled", sa.Boolean, nullable=False),
    sa.Column("unit", sa.Text, nullable=True),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    # where upstream listed the point: cached pages keep upstream's order
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

point_refresh = sa.Table(
    "point_refresh",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("refreshed_at_ms", sa.BigInteger, nullable=False),
)

rollups = sa.Table(
    "rollups",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("point", sa.Text, primary_key=True),
    sa.Column("level", sa.Text, primary_key=True),
    sa.Column("period_start_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    sa.CheckConstraint("level IN ('15m', '1h', '1d')", name="level"),
)

# the sampling mode each point's reporting pattern shows (series.kinds.observed_mode)
point_modes = sa.Table(
    "point_modes",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("point", sa.Text, primary_key=True),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    sa.CheckConstraint("mode IN ('sampled', 'cov')", name="mode"),
)

# what each stored period of a point showed of its mode (the periods decide point_modes)
# and, showing ``sampled``, its cadence (the periods over a range judge its gap limit)
point_mode_periods = sa.Table(
    "point_mode_periods",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("point", sa.Text, primary_key=True),
    sa.Column("period_start_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("period_end_ms", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("cadence_ms", sa.BigInteger, nullable=True),
    sa.CheckConstraint("mode IN ('sampled', 'cov')", name="mode"),
)

request_stats = sa.Table(
    "request_stats",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("samples", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
    sa.Column("cache_status", sa.Text, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False, server_default=sa.text("1")),
)

# Background jobs (tsgate.database.jobs): state, lease and result of each job.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("samples_done", sa.BigInteger, nullable=False),
    sa.Column("samples_total", sa.BigInteger, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result_key", sa.Text, nullable=True),
    sa.Column("result_size", sa.BigInteger, nullable=True),
    sa.Column("token_box", sa.LargeBinary, nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("started_ms", sa.BigInteger, nullable=True),
    sa.Column("finished_ms", sa.BigInteger, nullable=True),
    sa.Column("run_after_ms", sa.BigInteger, nullable=False),
    sa.Column("lease_until_ms", sa.BigInteger, nullable=True),
    sa.Column("worker", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    # webhook outbox: armed (notify_url given) → pending (finished) → sent | failed
    sa.Column("notify_state", sa.Text, nullable=True),
    sa.Column("notify_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notify_after_ms", sa.BigInteger, nullable=True),
    sa.CheckConstraint(
        "state IN ('queued', 'running', 'completed', 'failed', 'dead', 'cancelled')",
        name="state",
    ),
    sa.Index("ix_jobs_state_priority_run_after_ms", "state", "priority", "run_after_ms"),
    sa.Index("ix_jobs_finished_ms", "finished_ms"),
    sa.Index("ix_jobs_notify_state_after_ms", "notify_state", "notify_after_ms"),
)


charts = sa.Table(
    "charts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    # when the chart was last read: charts unused for TSGATE_CHART_TTL_S are deleted
    sa.Column("last_used_ms", sa.BigInteger, nullable=False, server_default="0", index=True),
)

# Durable secrets (the generated TSGATE_SECRET): kept here, never in the object store,
# which is a cache of upstream that operators may empty.
secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

# User files (tsgate.database.files): the bytes are in the object store under files/,
# never under the chunk cache's prefix; a file is owned by a scope, and optionally
# shared with the readers of a site or attached to one of its owner's saved charts.
files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, nullable=False, index=True),
    sa.Column("site", sa.Text, nullable=True, index=True),
    sa.Column("chart_id", sa.Text, nullable=True, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

# Monitoring history (tsgate.database.monitor): one value per metric and sample time,
# written by the maintenance pass every TSGATE_MONITOR_INTERVAL_S, trimmed after
# TSGATE_MONITOR_RETENTION_DAYS; alert_events records every change of an alert's level.
monitor_samples = sa.Table(
    "monitor_samples",
    metadata,
    sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("at_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index("ix_monitor_samples_at_ms", "at_ms"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("previous", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.CheckConstraint("level IN ('ok', 'warning', 'critical')", name="level"),
)
