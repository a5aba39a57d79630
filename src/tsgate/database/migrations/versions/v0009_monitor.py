"""Monitoring history: sampled metrics and the changes of alert levels.

Revision ID: 0009
Revises: 0008
Create Date: 2025-04-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_samples",
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("metric", "at_ms", name="pk_monitor_samples"),
    )
    op.create_index("ix_monitor_samples_at_ms", "monitor_samples", ["at_ms"])
    op.create_table(
        "alert_events",
        sa.Column("id", _ROW_ID, nullable=False, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("previous", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
        sa.CheckConstraint("level IN ('ok', 'warning', 'critical')", name="ck_alert_events_level"),
    )
    op.create_index("ix_alert_events_at_ms", "alert_events", ["at_ms"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_at_ms", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("ix_monitor_samples_at_ms", table_name="monitor_samples")
    op.drop_table("monitor_samples")
