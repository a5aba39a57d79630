"""Alembic migrations shipped inside the package; no alembic.ini is needed.

``upgrade_head`` runs on a synchronous connection (from ``AsyncConnection.run_sync``) so
an in-memory SQLite database is migrated on the very connection that will use it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

_HERE = Path(__file__).resolve().parent


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def upgrade_head(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
