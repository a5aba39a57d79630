"""The sampling mode each point's reporting pattern shows (points no tag describes).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "point_modes",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("point", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site", "point", name="pk_point_modes"),
        sa.CheckConstraint("mode IN ('sampled', 'cov')", name="ck_point_modes_mode"),
    )


def downgrade() -> None:
    op.drop_table("point_modes")
