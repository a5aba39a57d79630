"""What each stored period of a point showed of its sampling mode, so that the mode kept
per point is decided by its periods together, whatever order they were written in.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "point_mode_periods",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("site", "point", "period_start_ms", name="pk_point_mode_periods"),
        sa.CheckConstraint("mode IN ('sampled', 'cov')", name="ck_point_mode_periods_mode"),
    )


def downgrade() -> None:
    op.drop_table("point_mode_periods")
