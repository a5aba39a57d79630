"""The regular cadence each stored period of a point showed (the median interval of a
period showing ``sampled``), so that a point's gap limit follows the cadence observed over
the range judged (``core.kinds.judged_cadence_ms``). Periods stored before have none until
they are written again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("point_mode_periods") as batch:
        batch.add_column(sa.Column("cadence_ms", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("point_mode_periods") as batch:
        batch.drop_column("cadence_ms")
