"""Alembic environment: online mode only, on the connection tsgate hands over."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from tsgate.database.tables import metadata

# Any process may migrate at start-up; on PostgreSQL they queue on this lock.
_PG_MIGRATION_LOCK = 0x7473_6761_7465  # "tsgate"


def run_migrations_online() -> None:
    connection: sa.Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("tsgate migrations run online only: use tsgate.database.migrate(url)")
run_migrations_online()
