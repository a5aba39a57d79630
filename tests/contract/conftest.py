"""The database fixture shared by the SQL contract suites: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_schema
from tsgate.database import Database, open_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        # a nested folder: opening the database creates its parents
        yield f"sqlite:///{tmp_path}/nested/dir/tsgate.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url, migrate=True)
    try:
        yield database
    finally:
        await database.aclose()
