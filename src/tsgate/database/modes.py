"""The sampling mode each point's reporting pattern shows (``core.kinds.observed_mode``),
for points no tag describes: what each stored period showed (and, showing ``sampled``,
its cadence), and the mode those periods decide together (``core.kinds.settled_mode``),
kept per (site, point) as chunks are written. The periods are kept as long as the
point's data: the cadence of any range judged is the one its own periods showed
(``core.kinds.judged_cadence_ms``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tsgate.core.kinds import (
    MODE_HISTORY_MS,
    PeriodMode,
    cadence_of_held,
    judged_cadence_ms,
    settled_mode,
)
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
        each point concerned from the periods of its history (:data:`MODE_HISTORY_MS`)."""
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
                    "cadence_ms": p.cadence_ms,
                }
                for p in periods
                if p.mode is not None
            ]
            if shown:
                await conn.execute(sa.insert(_PERIODS), shown)
            names = sorted({p.point for p in periods})
            # every period that can decide: the history before each point's latest period
            # reaches back past the earliest written one by MODE_HISTORY_MS at most
            since = min(p.start_ms for p in periods) - MODE_HISTORY_MS
            held = await _read(conn, site, names, _PERIODS.c.period_end_ms > since)
            stored = {name: [(s, e, m) for s, e, m, _ in rows] for name, rows in held.items()}
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
        recorded = await self._periods(site, sorted({p.point for p in periods}), (lo, hi))

        def same(p: PeriodMode) -> bool:
            over = [r for r in recorded.get(p.point, []) if r[0] < p.end_ms and p.start_ms < r[1]]
            shown = (p.start_ms, p.end_ms, p.mode, p.cadence_ms)
            return over == ([] if p.mode is None else [shown])

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

    async def cadences(
        self, site: str, names: Sequence[str], span: tuple[int, int]
    ) -> dict[str, int]:
        """The regular cadence each named point shows over ``span``
        (:func:`~tsgate.core.kinds.judged_cadence_ms` of its stored periods: the time of
        ``span`` each cadence holds, summed in SQL, else the nearest period; points
        showing none left out)."""
        wanted = sorted(set(names))
        start, end = (sa.literal(t, sa.BigInteger) for t in span)
        p = _PERIODS.c
        held_ms = sa.func.sum(
            sa.case((p.period_end_ms < end, p.period_end_ms), else_=end)
            - sa.case((p.period_start_ms > start, p.period_start_ms), else_=start)
        )
        weights: dict[str, list[tuple[int | None, int]]] = defaultdict(list)
        async with self._sql.read() as conn:
            for batch in batched(wanted, IN_LIST_MAX):
                query = (
                    sa.select(p.point, p.cadence_ms, held_ms)
                    .where(
                        p.site == site,
                        p.point.in_(batch),
                        p.period_start_ms < end,
                        p.period_end_ms > start,
                    )
                    .group_by(p.point, p.cadence_ms)
                )
                for point, cadence, held in await conn.execute(query):
                    weights[str(point)].append(
                        (None if cadence is None else int(cadence), int(held))
                    )
        judged = {name: cadence_of_held(held) for name, held in weights.items()}
        nearest = await self._periods(site, [n for n in wanted if n not in weights], None)
        judged.update((n, judged_cadence_ms(periods, span)) for n, periods in nearest.items())
        return {name: cadence for name, cadence in judged.items() if cadence is not None}

    async def _periods(
        self, site: str, names: Sequence[str], span: tuple[int, int] | None
    ) -> dict[str, list[Shown]]:
        """The stored periods of ``names`` (overlapping ``span`` when given)."""
        overlapping = (
            sa.true()
            if span is None
            else sa.and_(_PERIODS.c.period_start_ms < span[1], _PERIODS.c.period_end_ms > span[0])
        )
        async with self._sql.read() as conn:
            return await _read(conn, site, names, overlapping)


# what one stored period showed: (start_ms, end_ms, mode, cadence_ms or None)
Shown = tuple[int, int, str, int | None]


async def _read(
    conn: AsyncConnection, site: str, names: Sequence[str], where: sa.ColumnElement[bool]
) -> dict[str, list[Shown]]:
    """The stored periods of ``names`` that ``where`` keeps, per point."""
    held: dict[str, list[Shown]] = defaultdict(list)
    for batch in batched(names, IN_LIST_MAX):
        query = sa.select(
            _PERIODS.c.point,
            _PERIODS.c.period_start_ms,
            _PERIODS.c.period_end_ms,
            _PERIODS.c.mode,
            _PERIODS.c.cadence_ms,
        ).where(_PERIODS.c.site == site, _PERIODS.c.point.in_(batch), where)
        for point, start, end, mode, cadence in await conn.execute(query):
            held[str(point)].append(
                (int(start), int(end), str(mode), None if cadence is None else int(cadence))
            )
    return dict(held)


def _latest(periods: Sequence[PeriodMode]) -> list[PeriodMode]:
    """``periods`` without those a later one of the same point overlaps (it replaces
    them, as a later write would)."""
    kept: dict[str, list[PeriodMode]] = defaultdict(list)
    for p in reversed(periods):
        if not any(p.start_ms < k.end_ms and k.start_ms < p.end_ms for k in kept[p.point]):
            kept[p.point].append(p)
    return [p for held in kept.values() for p in held]
