"""Saved chart configurations, scoped to a salted hash of the caller's token.

Revision ID: 0003
Revises: 0001
Create Date: 2025-02-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "charts",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_charts"),
    )
    op.create_index("ix_charts_scope", "charts", ["scope"])


def downgrade() -> None:
    op.drop_index("ix_charts_scope", table_name="charts")
    op.drop_table("charts")
