"""The sampling mode each point's reporting pattern shows (``core.kinds.observed_mode``),
for points no tag describes: what each stored period showed, and the mode those periods
decide together (``core.kinds.settled_mode``), kept per (site, point) as chunks are
written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa

from tsgate.core.kinds import MODE_HISTORY_MS, PeriodMode, settled_mode
from tsgate.database.chunks import IN_LIST_MAX
from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import point_mode_periods, point_modes

_PERIODS = point_mode_periods


class ObservedModes:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def put(self, site: str, periods: Sequence[PeriodMode], now_ms: int) -> None:
        """Record what each written period showed (replacing what the periods it
        overlaps showed, nothing when it shows neither mode) and decide again the mode of
        each point concerned; periods older than the history that decides are dropped."""
        periods = await self._changed(site, _latest(periods))
        if not periods:
            return  # every period shows what it showed before (a day read again, usually)
        async with self._sql.write() as conn:
            overlapped = sa.delete(_PERIODS).where(
                _PERIODS.c.site == site,
                _PERIODS.c.point == sa.bindparam("p"),
                _PERIODS.c.period_start_ms < sa.bindparam("e"),
                _PERIODS.c.period_end_ms > sa.bindparam("s"),
            )
            await conn.execute(
                overlapped, [{"p": p.point, "s": p.start_ms, "e": p.end_ms} for p in periods]
            )
            shown = [
                {
                    "site": site,
                    "point": p.point,
                    "period_start_ms": p.start_ms,
                    "period_end_ms": p.end_ms,
                    "mode": p.mode,
                }
                for p in periods
                if p.mode is not None
            ]
            if shown:
                await conn.execute(sa.insert(_PERIODS), shown)
            stored: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
            names = sorted({p.point for p in periods})
            for batch in batched(names, IN_LIST_MAX):
                query = sa.select(
                    _PERIODS.c.point,
                    _PERIODS.c.period_start_ms,
                    _PERIODS.c.period_end_ms,
                    _PERIODS.c.mode,
                ).where(_PERIODS.c.site == site, _PERIODS.c.point.in_(batch))
                for point, start, end, mode in await conn.execute(query):
                    stored[str(point)].append((int(start), int(end), str(mode)))
            cutoffs = [
                {"p": name, "c": max(e for _, e, _ in held) - MODE_HISTORY_MS}
                for name, held in stored.items()
            ]
            if cutoffs:
                old = sa.delete(_PERIODS).where(
                    _PERIODS.c.site == site,
                    _PERIODS.c.point == sa.bindparam("p"),
                    _PERIODS.c.period_end_ms <= sa.bindparam("c"),
                )
                await conn.execute(old, cutoffs)
            decided = {name: settled_mode(stored.get(name, ())) for name in names}
            undecided = [name for name, mode in decided.items() if mode is None]
            for batch in batched(undecided, IN_LIST_MAX):
                await conn.execute(
                    sa.delete(point_modes).where(
                        point_modes.c.site == site, point_modes.c.point.in_(batch)
                    )
                )
            rows = [
                {"site": site, "point": name, "mode": mode, "updated_at_ms": now_ms}
                for name, mode in decided.items()
                if mode is not None
            ]
            if rows:
                await conn.execute(self._sql.upsert(point_modes), rows)

    async def _changed(self, site: str, periods: Sequence[PeriodMode]) -> list[PeriodMode]:
        """The periods whose showing differs from what is recorded over their span."""
        if not periods:
            return []
        lo, hi = min(p.start_ms for p in periods), max(p.end_ms for p in periods)
        recorded: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        async with self._sql.read() as conn:
            for batch in batched(sorted({p.point for p in periods}), IN_LIST_MAX):
                query = sa.select(
                    _PERIODS.c.point,
                    _PERIODS.c.period_start_ms,
                    _PERIODS.c.period_end_ms,
                    _PERIODS.c.mode,
                ).where(
                    _PERIODS.c.site == site,
                    _PERIODS.c.point.in_(batch),
                    _PERIODS.c.period_start_ms < hi,
                    _PERIODS.c.period_end_ms > lo,
                )
                for point, start, end, mode in await conn.execute(query):
                    recorded[str(point)].append((int(start), int(end), str(mode)))

        def same(p: PeriodMode) -> bool:
            over = [r for r in recorded[p.point] if r[0] < p.end_ms and p.start_ms < r[1]]
            return over == ([] if p.mode is None else [(p.start_ms, p.end_ms, p.mode)])

        return [p for p in periods if not same(p)]

    async def get(self, site: str, names: Sequence[str]) -> dict[str, str]:
        """The observed mode of each named point that has one."""
        found: dict[str, str] = {}
        async with self._sql.read() as conn:
            for batch in batched(sorted(set(names)), IN_LIST_MAX):
                query = sa.select(point_modes.c.point, point_modes.c.mode).where(
                    point_modes.c.site == site, point_modes.c.point.in_(batch)
                )
                found.update((str(p), str(m)) for p, m in await conn.execute(query))
        return found


def _latest(periods: Sequence[PeriodMode]) -> list[PeriodMode]:
    """``periods`` without those a later one of the same point overlaps (it replaces
    them, as a later write would)."""
    kept: dict[str, list[PeriodMode]] = defaultdict(list)
    for p in reversed(periods):
        if not any(p.start_ms < k.end_ms and k.start_ms < p.end_ms for k in kept[p.point]):
            kept[p.point].append(p)
    return [p for held in kept.values() for p in held]
