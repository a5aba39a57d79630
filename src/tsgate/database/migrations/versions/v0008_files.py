"""User files: metadata of files kept in the object store under ``files/``.

Revision ID: 0008
Revises: 0007
Create Date: 2025-04-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_INDEXED = ("scope", "site", "chart_id")


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("site", sa.Text, nullable=True),
        sa.Column("chart_id", sa.Text, nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    for column in _INDEXED:
        op.create_index(f"ix_files_{column}", "files", [column])


def downgrade() -> None:
    for column in _INDEXED:
        op.drop_index(f"ix_files_{column}", table_name="files")
    op.drop_table("files")
