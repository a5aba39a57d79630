"""A throwaway PostgreSQL primary and its streaming replica, for the read/write split tests.

The primary is a fresh ``initdb`` cluster and the replica a ``pg_basebackup -R`` of it,
each on a free loopback port, run as the ``postgres`` user (PostgreSQL refuses root);
both are stopped and deleted afterwards. Missing binaries or user skip the test, except
under ``CI=true`` where they fail it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.asgi import free_port
from tests.conftest import IN_CI

PG_BIN = Path(os.environ.get("TSGATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI must have it")
    pytest.skip(reason)


def _as_postgres() -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    if os.environ.get("USER") == "postgres":
        return []
    _skip_or_fail("PostgreSQL clusters are started as the postgres user: run the tests as root")
    return []


@dataclass
class StreamingPair:
    base: Path
    primary_port: int
    replica_port: int
    _prefix: list[str]

    @property
    def primary_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.primary_port}/postgres"

    @property
    def replica_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.replica_port}/postgres"

    def run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])}: {done.stderr or done.stdout}")

    def pg_ctl(self, name: str, action: str, *extra: str) -> None:
        data = self.base / name
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", f"{data}.log", "-w", action, *extra)

    def wait_caught_up(self, timeout_s: float = 30.0) -> None:
        """Block until the replica has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary_url, autocommit=True) as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.replica_url, autocommit=True) as replica:
            while True:
                done = replica.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the replica did not replay up to {target}")
                time.sleep(0.02)

    def stop_replica(self) -> None:
        self.pg_ctl("replica", "stop", "-m", "immediate")

    def start_replica(self) -> None:
        self.pg_ctl("replica", "start")


@contextlib.contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    if not (PG_BIN / "initdb").exists():
        _skip_or_fail(f"PostgreSQL server binaries are not under {PG_BIN}")
    prefix = _as_postgres()
    base = Path(tempfile.mkdtemp(prefix="tsgate-pg-"))
    shutil.chown(base, "postgres", "postgres") if os.geteuid() == 0 else None
    pair = StreamingPair(base, free_port(), free_port(), prefix)
    started: list[str] = []
    try:
        primary = base / "primary"
        pair.run(str(PG_BIN / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(port=pair.primary_port, sockets=base))
        pair.pg_ctl("primary", "start")
        started.append("primary")
        replica = base / "replica"
        pair.run(
            str(PG_BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres"),
            *("-D", str(replica), "-R", "-X", "stream"),
        )
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {pair.replica_port}\n")
        pair.pg_ctl("replica", "start")
        started.append("replica")
        yield pair
    finally:
        for name in reversed(started):
            with contextlib.suppress(RuntimeError):
                pair.pg_ctl(name, "stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


_BOUNCER = """
[databases]
* = host=127.0.0.1 port={primary} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = {base}/pgbouncer.log
pidfile = {base}/pgbouncer.pid
"""


@contextlib.contextmanager
def pgbouncer(pair: StreamingPair) -> Iterator[int]:
    """PgBouncer in transaction mode in front of ``pair``'s primary; yields its port."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        _skip_or_fail("pgbouncer is not installed (apt-get install pgbouncer)")
    port = free_port()
    ini = pair.base / "pgbouncer.ini"
    ini.write_text(_BOUNCER.format(primary=pair.primary_port, port=port, base=pair.base))
    if os.geteuid() == 0:
        shutil.chown(ini, "postgres", "postgres")
    pair.run(binary, "-d", str(ini))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        pid = (pair.base / "pgbouncer.pid").read_text().strip()
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGTERM)
