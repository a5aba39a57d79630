"""Rollups gain a 15-minute level (local days in zones whose offset is not whole hours).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        batch.drop_constraint("ck_rollups_level", type_="check")
        batch.create_check_constraint("level", "level IN ('15m', '1h', '1d')")


def downgrade() -> None:
    op.execute("DELETE FROM rollups WHERE level = '15m'")
    with op.batch_alter_table("rollups") as batch:
        batch.drop_constraint("ck_rollups_level", type_="check")
        batch.create_check_constraint("level", "level IN ('1h', '1d')")
