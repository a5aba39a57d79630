"""Point catalog keeps upstream's order, so cached configured_points pages list points
as upstream does (drop-in clients may rely on it).

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("points") as batch:
        batch.add_column(sa.Column("position", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("points") as batch:
        batch.drop_column("position")
