"""Read replicas: reads that may be slightly stale go to a PostgreSQL streaming replica
that keeps up; everything else, and every read after a write in the same task (a
request, a job), goes to the primary.

``TSGATE_DATABASE_READ_URL`` names one or more replicas (comma-separated). Each one's
replay lag is measured at most every ``check_s`` when a read wants it: ``0`` while it has
replayed all it received, else the age of the last transaction it replayed. A replica
that lags past ``max_lag_s`` or fails (connection refused, a query error) is skipped
until a later check finds it well; ``/api/health`` lists each with its state and lag.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

# set by a write: later reads of the same task see the primary (read-your-writes)
_WROTE: contextvars.ContextVar[bool] = contextvars.ContextVar("tsgate_db_wrote", default=False)

_LAG = sa.text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0.0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9)"
    " END"
)


def wrote() -> None:
    """This task wrote: its later reads go to the primary."""
    _WROTE.set(True)


def has_written() -> bool:
    return _WROTE.get()


def display_name(url: URL) -> str:
    """``host:port/database`` of a URL, never its credentials."""
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


@dataclass
class Replica:
    name: str
    engine: AsyncEngine
    lag_s: float | None = None
    error: str | None = None
    checked_at: float = -math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def state(self, max_lag_s: float) -> str:
        if self.error is not None:
            return "error"
        if self.lag_s is None:
            return "unchecked"
        return "lagging" if self.lag_s > max_lag_s else "ok"

    def failed(self, exc: BaseException) -> None:
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        self.error = f"{type(cause).__name__}: {lines[0] if lines else ''}"
        self.checked_at = time.monotonic()

    def to_json(self, max_lag_s: float) -> dict[str, Any]:
        lag = None if self.lag_s is None else round(self.lag_s, 3)
        out: dict[str, Any] = {"name": self.name, "status": self.state(max_lag_s), "lag_s": lag}
        if self.error is not None:
            out["detail"] = self.error
        return out


class ReplicaSet:
    def __init__(
        self, replicas: list[Replica], *, max_lag_s: float = 5.0, check_s: float = 1.0
    ) -> None:
        self.replicas = replicas
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self.reads = {"replica": 0, "primary": 0}

    async def choose(self) -> Replica | None:
        """A replica fit for a stale-ok read now, or ``None`` (use the primary)."""
        for replica in self.replicas:
            if time.monotonic() - replica.checked_at >= self.check_s:
                await self.check(replica)
            if replica.state(self.max_lag_s) == "ok":
                return replica
        return None

    async def check(self, replica: Replica) -> None:
        async with replica.lock:
            if time.monotonic() - replica.checked_at < self.check_s:
                return  # another reader checked it meanwhile
            try:
                async with replica.engine.connect() as conn:
                    lag = (await conn.execute(_LAG)).scalar_one()
            except (SQLAlchemyError, OSError) as exc:
                replica.failed(exc)
                return
            replica.lag_s, replica.error = float(lag), None
            replica.checked_at = time.monotonic()

    async def check_all(self) -> list[dict[str, Any]]:
        """Every replica checked now (for health)."""
        for replica in self.replicas:
            replica.checked_at = -math.inf
            await self.check(replica)
        return [r.to_json(self.max_lag_s) for r in self.replicas]

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()
