"""Shared fixtures: service gates, the simulator, and the anyio backend."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import pytest

if TYPE_CHECKING:
    from tests.seaweedfs import SeaweedFS
    from tsgate.database import Database
    from tsgate.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

SERVICE_URLS = {
    "postgres": os.environ.get(
        "TSGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "redis": os.environ.get("TSGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "rabbitmq": os.environ.get("TSGATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def service_url(name: str) -> str:
    """The URL of a scale-out service, or skip (fail under CI=true) when it is down."""
    url = SERVICE_URLS[name]
    if not _reachable(url):
        message = f"{name} is not reachable at {urlsplit(url).netloc} (run `make services`)"
        if IN_CI:
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings in a fresh folder: SQLite file + local object store."""
    from tsgate.settings import Settings

    return Settings(
        database_url=f"sqlite:///{tmp_path}/tsgate.db",
        objects_url=f"file://{tmp_path}/objects",
        upstream_measure_costs=False,  # request plans by the fixed model: the same every run
    )


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards, so
    parallel or repeated runs never see each other's tables."""
    import psycopg

    base = service_url("postgres")
    schema = f"tsgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server for the session; tests keep to prefixes of their own."""
    from tests.seaweedfs import running_seaweedfs

    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend: SQLite in the test's folder, and a schema of
    its own on PostgreSQL."""
    if request.param == "sqlite":
        # a nested folder: opening the database creates its parents
        yield f"sqlite:///{tmp_path}/nested/dir/tsgate.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The database at ``db_url``, migrated, closed afterwards."""
    from tsgate.database import open_database

    database = await open_database(db_url, migrate=True)
    try:
        yield database
    finally:
        await database.aclose()
