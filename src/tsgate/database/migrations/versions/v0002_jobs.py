"""Background jobs: one row per job with its state, lease, progress and result.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'completed', 'failed', 'dead', 'cancelled')",
            name="ck_jobs_state",
        ),
    )
    op.create_index(
        "ix_jobs_state_priority_run_after_ms", "jobs", ["state", "priority", "run_after_ms"]
    )
    op.create_index("ix_jobs_finished_ms", "jobs", ["finished_ms"])


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_ms", table_name="jobs")
    op.drop_index("ix_jobs_state_priority_run_after_ms", table_name="jobs")
    op.drop_table("jobs")
