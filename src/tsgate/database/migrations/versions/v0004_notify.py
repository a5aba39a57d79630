"""Webhook outbox on the jobs table: a finished job's notification is recorded with the
job's final state and delivered (and retried) by any worker, so none is lost to a crash.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("notify_state", sa.Text, nullable=True))
        batch.add_column(
            sa.Column("notify_attempts", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("notify_after_ms", sa.BigInteger, nullable=True))
    op.create_index("ix_jobs_notify_state_after_ms", "jobs", ["notify_state", "notify_after_ms"])


def downgrade() -> None:
    op.drop_index("ix_jobs_notify_state_after_ms", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("notify_after_ms")
        batch.drop_column("notify_attempts")
        batch.drop_column("notify_state")
