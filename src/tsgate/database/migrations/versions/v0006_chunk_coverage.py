"""Chunks that cannot lose data: each row records the ranges it really covers, the
untrusted tail of its last fetch, its state (open | provisional | final) with a re-check
schedule, and a checksum of its object. Rollups gain the times of each bucket's extremes.

The chunk index and the rollups are a cache of upstream: both are emptied and refilled
on demand (old objects under ``raw/`` are no longer referenced; new ones live under
``chunks/``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_table("chunks")
    op.execute(sa.text("DELETE FROM rollups"))
    op.create_table(
        "chunks",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text, nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
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
        sa.PrimaryKeyConstraint("site", "point", "resolution", "period_start_ms", name="pk_chunks"),
        sa.CheckConstraint("resolution IN ('raw', '5min')", name="ck_chunks_resolution"),
        sa.CheckConstraint("period_end_ms > period_start_ms", name="ck_chunks_period"),
        sa.CheckConstraint("state IN ('open', 'provisional', 'final')", name="ck_chunks_state"),
    )
    op.create_index("ix_chunks_state_recheck_at_ms", "chunks", ["state", "recheck_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_chunks_state_recheck_at_ms", table_name="chunks")
    op.drop_table("chunks")
    op.execute(sa.text("DELETE FROM rollups"))
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
