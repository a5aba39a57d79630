"""Request statistics kept as groups: a row counts the requests of one second with the
same route, status and cache status (``requests``), and its ``duration_ms``, ``samples``
and ``bytes_out`` are their totals. Rows written before hold one request each, which the
default says.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_stats") as batch:
        batch.add_column(
            sa.Column("requests", sa.BigInteger, nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    with op.batch_alter_table("request_stats") as batch:
        batch.drop_column("requests")
