"""Initial schema: chunk index, point catalog, rollup blobs, request statistics.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chunks",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text, nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("sealed", sa.Boolean, nullable=False),
        sa.Column("covered_end_ms", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("first_ms", sa.BigInteger, nullable=True),
        sa.Column("last_ms", sa.BigInteger, nullable=True),
        sa.Column("fetched_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site", "point", "resolution", "period_start_ms", name="pk_chunks"),
        sa.CheckConstraint("resolution IN ('raw', '5min')", name="ck_chunks_resolution"),
        sa.CheckConstraint("period_end_ms > period_start_ms", name="ck_chunks_period"),
    )
    op.create_table(
        "points",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("collect_enabled", sa.Boolean, nullable=False),
        sa.Column("unit", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site", "name", name="pk_points"),
    )
    op.create_table(
        "point_refresh",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("refreshed_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site", name="pk_point_refresh"),
    )
    op.create_table(
        "rollups",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site", "point", "level", "period_start_ms", name="pk_rollups"),
        sa.CheckConstraint("level IN ('1h', '1d')", name="ck_rollups_level"),
    )
    op.create_table(
        "request_stats",
        sa.Column("id", _ROW_ID, nullable=False, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("bytes_out", sa.BigInteger, nullable=False),
        sa.Column("cache_status", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_request_stats"),
    )
    op.create_index("ix_request_stats_at_ms", "request_stats", ["at_ms"])


def downgrade() -> None:
    op.drop_index("ix_request_stats_at_ms", table_name="request_stats")
    for table in ("request_stats", "rollups", "point_refresh", "points", "chunks"):
        op.drop_table(table)
