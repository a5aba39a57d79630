"""The generated secret lives in the database (durable), and saved charts record when
they were last used, so unused ones can expire.

Revision ID: 0007
Revises: 0006
Create Date: 2025-03-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_secrets"),
    )
    with op.batch_alter_table("charts") as batch:
        batch.add_column(
            sa.Column("last_used_ms", sa.BigInteger, nullable=False, server_default="0")
        )
    # charts saved before this revision count as used when it ran
    op.execute("UPDATE charts SET last_used_ms = created_at_ms")
    op.create_index("ix_charts_last_used_ms", "charts", ["last_used_ms"])


def downgrade() -> None:
    op.drop_index("ix_charts_last_used_ms", table_name="charts")
    with op.batch_alter_table("charts") as batch:
        batch.drop_column("last_used_ms")
    op.drop_table("secrets")
