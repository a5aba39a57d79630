"""A state machine over one tsgate and its simulator: reads through random paths mixed with
late uploads, a moving clock, restarts, lost or corrupt storage and a revoked token.

After every read the answer equals what the simulator serves at that moment (raw samples
exactly, aggregates within 1e-9 of a brute-force reference), or the read is a clear error;
a read with a revoked token never gets data. The default profile stays well under a minute;
``STATEFUL_EXAMPLES`` (or the ``slow`` profile below) runs longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import io
import os
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from tests import simtruth
from tests.clock import NOW, Clock
from tests.differential.harness import (
    AUTH,
    DAY_MS,
    HOUR_MS,
    SITE,
    Harness,
    Tally,
    check,
    compare_all,
    decode_series,
    diff_settings,
    read_paginated,
    truth_buckets,
    truth_of,
)
from tsgate.errors import UpstreamUnavailable
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import PAGE_SIZES, format_time

pytestmark = [pytest.mark.differential]

MINUTE_MS = 60_000
ZONE = "America/New_York"
REVOCABLE = "u"  # a second token, revoked by a rule
# the read paths of the harness, each with its options drawn inside ``check``
PATHS = ("paginated", "paginated_buckets", "per_point", "get_timeseries", "chart_raw")
AGG_PATHS = ("chart_interval", "aggregations")
# past spans whose samples upstream holds back until a rule uploads them (recent enough
# for the re-check schedule to still read them again)
HIDDEN = (
    (NOW - 30 * HOUR_MS, NOW - 26 * HOUR_MS),
    (NOW - 9 * HOUR_MS, NOW - 8 * HOUR_MS),
    (NOW - 52 * HOUR_MS, NOW - 49 * HOUR_MS),
)
RECHECK_STEPS_MS = (2 * HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS)
# what one upstream request costs, as the request planner is told (latency ms, transfer µs
# per sample): measured, the plan (and so how many requests a failing upstream refuses,
# and whether the breaker opens) follows the machine's load; drawn, a run replays exactly
COSTS = {
    "latency-bound": (200.0, 0.001),  # points batched, few requests
    "transfer-bound": (0.0, 1000.0),  # a point at a time, its span in windows
    "the policy's figures": (200.0, 100.0),
}


def _offsets() -> st.SearchStrategy[int]:
    return st.integers(-4 * DAY_MS // MINUTE_MS, 0).map(lambda m: m * MINUTE_MS)


def _lengths() -> st.SearchStrategy[int]:
    return st.sampled_from(
        [5 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 2 * DAY_MS, 3 * DAY_MS]
    ) | st.integers(1, 2 * DAY_MS)


def local_day_buckets(
    t: np.ndarray[Any, Any], v: np.ndarray[Any, Any], start: int, agg: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Samples grouped by their local date one at a time, stamped at local midnight."""
    tz = ZoneInfo(ZONE)
    keys = [dt.datetime.fromtimestamp(int(x) / 1000, tz).date() for x in t]
    fn = {"avg": np.mean, "min": np.min, "max": np.max, "sum": np.sum, "count": len}[agg]
    stamps: list[int] = []
    values: list[float] = []
    for key in sorted(set(keys)):
        midnight = dt.datetime(key.year, key.month, key.day, tzinfo=tz)
        stamps.append(max(int(midnight.timestamp() * 1000), start))
        values.append(float(fn(v[[k == key for k in keys]])))
    return np.array(stamps, dtype=np.int64), np.array(values, dtype=np.float64)


class TsgateMachine(RuleBasedStateMachine):
    """One tsgate on one folder, the simulator upstream, a shared hand-set clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        self.clock = Clock(NOW)
        self.sim: Simulator = create_simulator(seed=11, now_ms=self.clock)
        sites = [s.name for s in self.sim.sites]
        self.sim.tokens = {"t": frozenset(sites), REVOCABLE: frozenset(sites)}
        self.tally = Tally("stateful")
        self.settings = diff_settings(
            Path(self.folder.name),
            site_zones=(f"{SITE}={ZONE}",),
            upstream_measure_costs=False,
        )
        self.h = Harness(self.sim, self.clock, self.settings, self.tally)
        self.pool = [p.name for p in self.sim.site_by_name[SITE].collecting][:12]
        self.hidden = list(range(len(HIDDEN)))  # outages not uploaded yet
        self.revoked_at: int | None = None
        self.upstream_failed = False
        # until then the breaker may still be open: drop-in pages are not read (they are
        # refused whole then, test_regressions' whole-or-refused test proves it)
        self.breaker_until = 0
        # a chart query, its window, the ETag and body of its last answer
        self.etagged: tuple[dict[str, str], tuple[int, int], str, Any] | None = None
        self.sim.faults.visibility_delay_s = 20  # samples arrive 20 s – 3 min late
        self.sim.faults.visibility_jitter_s = 160
        self.sim.faults.outages = [
            Outage(a, b, backlog_ms=None, points=tuple(self.pool[:6])) for a, b in HIDDEN
        ]
        self.start()

    @initialize(costs=st.sampled_from(sorted(COSTS)))
    def plan_by(self, costs: str) -> None:
        """The request planner's cost figures, drawn (never measured: see ``COSTS``)."""
        latency_ms, sample_us = COSTS[costs]
        self.settings = dataclasses.replace(
            self.settings, upstream_latency_ms=latency_ms, upstream_sample_us=sample_us
        )
        self.h.settings = self.settings
        self.restart_service()

    def start(self) -> None:
        self.run(self.h.start())
        # the breaker's cool-down runs on the test clock too, as every TTL does
        self.h.services.upstream.breaker._clock = lambda: self.clock.ms / 1000

    def restart_service(self) -> None:
        self.run(self.h.stop())
        self.start()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        if os.environ.get("STATEFUL_VERBOSE"):
            print("STAT", self.tally.queries, self.tally.samples, len(self.hidden), self.revoked_at)
        try:
            self.run(self.h.stop())
        finally:
            self.loop.close()
            self.folder.cleanup()

    # ---- reads ----------------------------------------------------------------------

    def window(self, offset: int, length: int) -> tuple[int, int]:
        start = self.clock.ms + offset - length // 2
        return start, start + length

    def names(self, first: int, count: int) -> list[str]:
        return self.pool[first % len(self.pool) :][:count] or self.pool[:1]

    def assert_clean(self) -> None:
        if self.upstream_failed:
            # after upstream failed, the breaker refuses calls for a while (on its own
            # clock): a 503 that says so is a clear error naming the cause, not a wrong answer
            self.tally.divergences = [
                d
                for d in self.tally.divergences
                if not (d.kind == "status 503" and "circuit open" in d.detail)
            ]
        assert not self.tally.divergences, self.tally.report()

    @rule(
        path=st.sampled_from(PATHS + AGG_PATHS),
        first=st.integers(0, 11),
        count=st.integers(1, 3),
        offset=_offsets(),
        length=_lengths(),
        seed=st.integers(0, 2**31),
    )
    def read(self, path: str, first: int, count: int, offset: int, length: int, seed: int) -> None:
        if path.startswith("paginated") and self.clock.ms < self.breaker_until:
            return
        start, end = self.window(offset, length)
        names = self.names(first, count)
        self.run(check(self.h, path, names, start, end, random.Random(seed)))
        self.assert_clean()

    @rule(
        first=st.integers(0, 11),
        count=st.integers(1, 4),
        offset=_offsets(),
        length=_lengths(),
        page_size=st.sampled_from(PAGE_SIZES),
    )
    def read_dropin_pages(
        self, first: int, count: int, offset: int, length: int, page_size: int
    ) -> None:
        """The drop-in stream, every page size (small pages cut identical timestamps)."""
        if self.clock.ms < self.breaker_until:
            return
        start, end = self.window(offset, min(length, 6 * HOUR_MS))
        names = self.names(first, count)
        got = self.run(read_paginated(self.h, names, start, end, page_size))
        want = truth_of(self.sim, names, start, end)
        compare_all(self.tally, "paginated", f"size={page_size} {start}→{end}", want, got)
        self.assert_clean()

    @rule(
        first=st.integers(0, 11),
        offset=_offsets(),
        length=_lengths(),
        agg=st.sampled_from(["avg", "min", "max", "sum", "count"]),
    )
    def read_local_days(self, first: int, offset: int, length: int, agg: str) -> None:
        start, end = self.window(offset, length)
        names = self.names(first, 2)
        q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
        q |= {"end": format_time(end), "interval": "1d", "agg": agg, "tz": "site"}
        r = self.run(self.h.get("/api/timeseries", "tz=site", params=q))
        self.assert_clean()
        if r is None:
            return  # a clear error, accepted by assert_clean
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["metadata"]["timeZone"] == ZONE
        got = {s["name"]: decode_series(s) for s in body["series"]}
        truth = truth_of(self.sim, names, start, end)
        want = {n: local_day_buckets(t, v, start, agg) for n, (t, v) in truth.items()}
        rtol = 1e-9 if agg in ("avg", "sum") else 0.0
        compare_all(self.tally, "chart tz=site", f"{agg} {start}→{end}", want, got, rtol=rtol)
        self.assert_clean()

    @rule(first=st.integers(0, 11), offset=_offsets(), hours=st.integers(1, 30))
    def read_frame(self, first: int, offset: int, hours: int) -> None:
        """``/api/frame`` (CSV, 15-minute means) against the samples cell by cell."""
        width = 15 * MINUTE_MS
        start = (self.clock.ms + offset) // width * width - hours * HOUR_MS
        end = start + hours * HOUR_MS
        names = self.names(first, 2)
        q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
        q |= {"end": format_time(end), "interval": "15min", "format": "csv"}
        r = self.run(self.h.get("/api/frame", "frame", params=q))
        self.assert_clean()
        if r is None:
            return  # a clear error, accepted by assert_clean
        assert r.status_code == 200, r.text
        if r.headers.get("x-cache-status") == "STALE":  # upstream failed: marked, not fresh
            assert "no-store" in r.headers.get("cache-control", "")
            return
        header, *rows = list(csv.reader(io.StringIO(r.text)))
        truth = truth_of(self.sim, names, start, end)
        for name in names:
            col = header.index(name)
            t, v = truth[name]
            for row in rows:
                cell_t = int(dt.datetime.fromisoformat(row[0]).timestamp() * 1000)
                inside = v[(t >= cell_t) & (t < cell_t + width)]
                if inside.size:
                    assert float(row[col]) == pytest.approx(float(np.mean(inside)), rel=1e-9), (
                        name,
                        row[0],
                    )
                else:
                    assert row[col] in ("", "nan", "NaN"), (name, row[0], row[col])

    @rule(
        first=st.integers(0, 11),
        offset=_offsets(),
        length=_lengths(),
        interval=st.sampled_from(["raw", "15min", "1h"]),
    )
    def read_again_with_the_etag(self, first: int, offset: int, length: int, interval: str) -> None:
        """A chart read, then the same query with its ``ETag``: a 304 only while the answer
        it names is still the truth (late uploads, repairs and restarts in between)."""
        names = self.names(first, 2)
        if self.etagged is None or first % 3 == 0:
            start, end = self.window(offset, length)
            q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
            q |= {"end": format_time(end), "interval": interval, "agg": "max"}
            r = self.run(self.h.get("/api/timeseries", "etag", params=q))
            self.assert_clean()
            if r is None:
                return  # a clear error, accepted by assert_clean
            assert r.status_code == 200, r.text
            self.etagged = (q, (start, end), r.headers["etag"], r.json())
        q, (start, end), etag, body = self.etagged
        r = self.run(
            self.h.get("/api/timeseries", "etag", params=q, headers={"If-None-Match": etag})
        )
        self.assert_clean()
        if r is None:
            return  # a clear error, accepted by assert_clean
        assert r.status_code in (200, 304), r.text
        if r.status_code == 200:
            body = r.json()
            self.etagged = (q, (start, end), r.headers["etag"], body)
        got = {s["name"]: decode_series(s) for s in body["series"]}
        truth = truth_of(self.sim, q["points"].split(","), start, end)
        if q["interval"] == "raw":
            want = truth
        else:
            width = {"15min": 15 * MINUTE_MS, "1h": HOUR_MS}[q["interval"]]
            want = {n: truth_buckets(a, width, "max", start) for n, a in truth.items()}
        if r.headers.get("x-cache-status") == "STALE":
            # upstream refused (the breaker still cools down after it failed): the answer
            # (a 304 names the same one) is marked, never kept, and holds only real values
            assert "no-store" in r.headers.get("cache-control", ""), r.headers
            for n, (t, v) in got.items():
                wt, wv = want[n]  # a bucket of cached samples only: its max is at most
                assert np.isin(t, wt).all(), (n, q)
                kept = wv[np.searchsorted(wt, t)]
                assert np.array_equal(kept, v) if q["interval"] == "raw" else (v <= kept).all()
            self.etagged = None  # the next read of this rule asks afresh
            return
        compare_all(self.tally, f"etag {r.status_code}", str(q), want, got)
        self.assert_clean()

    @rule(
        first=st.integers(0, 11),
        offset=_offsets(),
        hours=st.integers(1, 24),
        step_s=st.sampled_from([60, 300, 900, 3600]),
        range_s=st.sampled_from([300, 900, 3600]),
        func=st.sampled_from(["avg", "max", "count", "last"]),
    )
    def read_prometheus(
        self, first: int, offset: int, hours: int, step_s: int, range_s: int, func: str
    ) -> None:
        """``query_range`` of an ``*_over_time`` against the windows evaluated by hand."""
        name = self.names(first, 1)[0]
        end = (self.clock.ms + offset) // 1000 * 1000
        start = end - hours * HOUR_MS
        query = f'{func}_over_time(ace{{site="{SITE}",point="{name}"}}[{range_s}s])'
        params = {"query": query, "start": str(start / 1000), "end": str(end / 1000)}
        params["step"] = str(step_s)
        r = self.run(self.h.get("/prometheus/api/v1/query_range", "prometheus", params=params))
        self.assert_clean()
        if r is None:
            return  # a clear error, accepted by assert_clean
        assert r.status_code == 200, r.text
        result = r.json()["data"]["result"]
        got = simtruth.as_map(result[0]["values"]) if result else {}
        t, v = truth_of(self.sim, [name], start - range_s * 1000, end + 1)[name]
        rows = list(zip(t.tolist(), v.tolist(), strict=True))
        want = {
            step: x
            for step in simtruth.steps(start, end, step_s * 1000)
            if (x := simtruth.over_time(func, simtruth.window(rows, step, range_s * 1000)))
            is not None
        }
        assert set(got) == set(want), (query, sorted(set(got) ^ set(want))[:5])
        bad = {k: (got[k], want[k]) for k in want if not simtruth.close(got[k], want[k])}
        assert not bad, (query, list(bad.items())[:5])

    @rule(
        first=st.integers(0, 11),
        offset=_offsets(),
        length=_lengths(),
        interval=st.sampled_from(["raw", "1h"]),
    )
    def read_while_upstream_fails(
        self, first: int, offset: int, length: int, interval: str
    ) -> None:
        """Upstream answers 500 to every timeseries read: a chart answer is the truth, or
        marked ``STALE`` (and holds only samples upstream serves), or a clear 5xx problem."""
        start, end = self.window(offset, length)
        names = self.names(first, 2)
        q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
        q |= {"end": format_time(end), "interval": interval, "agg": "max"}
        self.sim.faults.fail_after = 0
        self.upstream_failed = True
        self.breaker_until = self.clock.ms + 31_000
        try:
            r = self.run(self.h.http.get("/api/timeseries", params=q, headers=AUTH))
        finally:
            self.sim.faults.fail_after = None
        if r.status_code >= 500:
            problem = r.json()
            assert problem["status"] == r.status_code and problem["detail"], r.text[:200]
            assert r.status_code in (502, 503, 504), r.text[:200]
            return
        assert r.status_code == 200, r.text[:200]
        got = {s["name"]: decode_series(s) for s in r.json()["series"]}
        truth = truth_of(self.sim, names, start, end)
        if interval == "1h":
            truth = {n: truth_buckets(a, HOUR_MS, "max", start) for n, a in truth.items()}
        if r.headers.get("x-cache-status") == "STALE":
            assert "no-store" in r.headers.get("cache-control", "")
            for n, (t, v) in got.items():
                if interval == "raw":  # the cached part: real samples only
                    wt, wv = truth[n]
                    idx = np.searchsorted(wt, t)
                    assert np.isin(t, wt).all() and np.array_equal(wv[idx], v), n
            return
        compare_all(self.tally, "upstream failing", str(q), truth, got)
        self.assert_clean()

    @precondition(lambda self: self.revoked_at is not None)
    @rule(path=st.sampled_from(["/api/timeseries", "/api/frame", "per_point", "paginated"]))
    def read_with_the_revoked_token(self, path: str) -> None:
        """Past the access TTL, the revoked token gets a 401, never cached data."""
        assert self.revoked_at is not None
        self.clock.ms = max(self.clock.ms, self.revoked_at + 301_000)
        start, end = self.clock.ms - DAY_MS, self.clock.ms
        names = self.pool[:2]
        headers = {"Authorization": f"Bearer {REVOCABLE}"}
        if path in ("per_point", "paginated"):
            url = f"/api/points/{names[0]}/timeseries"
            params = {"start_time": format_time(start), "end_time": format_time(end)}
            if path == "paginated":
                url = f"/api/sites/{SITE}/timeseries/paginated"
                params |= {"point_names": ",".join(names), "raw_data": "true"}
        else:
            url = path
            params = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
            params |= {"end": format_time(end)}
            if path == "/api/frame":
                params["interval"] = "15min"
        r = self.run(self.h.http.get(url, params=params, headers=headers))
        assert r.status_code in (401, 403), (r.status_code, r.text[:200])

    # ---- changes ----------------------------------------------------------------------

    @rule(ms=st.integers(61_000, 3 * HOUR_MS))
    def advance_clock(self, ms: int) -> None:
        self.clock.ms += ms

    @precondition(lambda self: bool(self.hidden))
    @rule(which=st.integers(0, 2))
    def upload_backlog(self, which: int) -> None:
        """A gateway uploads a held-back span; the re-check schedule then runs past it."""
        # a backlog is caught while its days' re-check schedule runs (the last step 7 days
        # after the day's end); after that the period is final as it is (docs/api.md)
        open_days = [
            i for i in self.hidden if HIDDEN[i][1] // DAY_MS * DAY_MS + 8 * DAY_MS > self.clock.ms
        ]
        if not open_days:
            return
        i = open_days[which % len(open_days)]
        self.hidden.remove(i)
        outages = list(self.sim.faults.outages)
        old = outages[i]
        outages[i] = Outage(old.start_ms, old.end_ms, backlog_ms=self.clock.ms, points=old.points)
        self.sim.faults.outages = outages
        upload = self.clock.ms
        for step in RECHECK_STEPS_MS:
            self.clock.ms = max(self.clock.ms, upload + step)
            self.run(self.h.maintenance())

    @rule()
    def restart(self) -> None:
        self.restart_service()

    @rule(seed=st.integers(0, 2**31), corrupt=st.booleans())
    def damage_an_object(self, seed: int, corrupt: bool) -> None:
        _, files = self.h._chunk_files()
        if not files:
            return
        p = random.Random(seed).choice(files)
        if corrupt:
            data = p.read_bytes()
            p.write_bytes(b"\x00garbage" + data[8:] if len(data) > 8 else b"\x00")
        else:
            p.unlink()
        self.restart_service()  # no decoded copy in memory hides the damage

    @rule(seed=st.integers(0, 2**31), how=st.sampled_from(["truncate", "garbage", "delete"]))
    def damage_a_rollup(self, seed: int, how: str) -> None:
        db = Path(self.folder.name) / "tsgate.db"
        # changed with the service stopped: no write of its own holds the database then
        # (a write the service began in a rule only goes on while the next one runs)
        self.run(self.h.stop())
        try:
            self._damage_a_rollup(db, seed, how)
        finally:
            self.start()

    @staticmethod
    def _damage_a_rollup(db: Path, seed: int, how: str) -> None:
        with sqlite3.connect(db) as con:
            keys = con.execute(
                "SELECT site, point, level, period_start_ms, length(blob) FROM rollups"
                " ORDER BY site, point, level, period_start_ms"
            ).fetchall()
            if not keys:
                return
            site, point, level, period, size = random.Random(seed).choice(keys)
            where = "site=? AND point=? AND level=? AND period_start_ms=?"
            if how == "delete":
                con.execute(f"DELETE FROM rollups WHERE {where}", (site, point, level, period))
            else:
                blob = b"\x01\x02garbage" if how == "garbage" else b"\x00" * max(1, size // 2)
                con.execute(
                    f"UPDATE rollups SET blob=? WHERE {where}", (blob, site, point, level, period)
                )

    @precondition(lambda self: self.revoked_at is None)
    @rule()
    def revoke_a_token(self) -> None:
        # the revocable token reads first, so tsgate has its grant cached
        start = self.clock.ms - HOUR_MS
        params = {"site": SITE, "points": self.pool[0], "start": format_time(start)}
        params |= {"end": format_time(self.clock.ms)}
        r = self.run(
            self.h.http.get(
                "/api/timeseries", params=params, headers={"Authorization": f"Bearer {REVOCABLE}"}
            )
        )
        assert r.status_code == 200, r.text[:200]
        assert self.sim.tokens is not None
        self.sim.tokens = {"t": self.sim.tokens["t"]}
        self.revoked_at = self.clock.ms


def test_a_chart_read_while_the_breaker_cools_down_is_marked_stale_and_its_etag_too() -> None:
    """The intermittent failure, replayed as the default run drew it: the read while
    upstream fails made enough failing requests to open the breaker (a point at a time,
    as the planner shapes requests when transfer dominates; batched, one request fails
    and it stays closed), so the next chart read, at the same moment, was answered from
    the cache only: 0 of the window's samples, marked ``STALE`` with ``no-store``, and
    its re-read with the ETag a 304 of that same marked answer. The rule took it for a
    final answer. Whether the breaker opened followed the measured upstream latency,
    i.e. the machine's load; the planner's costs are drawn now, and a marked answer
    is checked as one."""
    machine = TsgateMachine()
    try:
        machine.plan_by(costs="transfer-bound")
        machine.read_frame(first=10, hours=11, offset=-205980000)
        machine.read_dropin_pages(
            count=2, first=9, length=2009, offset=-106560000, page_size=300000
        )
        machine.read_dropin_pages(
            count=4, first=10, length=86400000, offset=-179580000, page_size=50000
        )
        machine.read_again_with_the_etag(first=3, interval="raw", length=21600000, offset=-39720000)
        machine.read_dropin_pages(count=2, first=1, length=29190, offset=-25080000, page_size=50000)
        machine.advance_clock(ms=4780383)
        machine.read_dropin_pages(
            count=4, first=1, length=13622629, offset=-330960000, page_size=10
        )
        machine.read_while_upstream_fails(
            first=1, interval="1h", length=172800000, offset=-48600000
        )
        # that read opens the breaker when it made enough failing requests, which
        # follows what the reads before it stored: the failures it did not make, here
        breaker = machine.h.services.upstream.breaker

        async def failing() -> None:
            raise UpstreamUnavailable("upstream answered HTTP 500")

        for _ in range(breaker.failures):
            if breaker.state == "open":
                break
            with contextlib.suppress(UpstreamUnavailable):
                machine.run(breaker.call(failing))
        assert breaker.state == "open"
        names = machine.names(0, 2)
        start, end = machine.window(-10800000, 3600000)
        q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
        q |= {"end": format_time(end), "interval": "15min", "agg": "max"}
        first = machine.run(machine.h.http.get("/api/timeseries", params=q, headers=AUTH))
        assert first.status_code == 200, first.text[:300]
        assert first.headers["x-cache-status"] == "STALE"
        assert first.headers["cache-control"] == "no-store"
        assert any(truth_of(machine.sim, names, start, end)[n][0].size for n in names)
        etag = {**AUTH, "If-None-Match": first.headers["etag"]}
        again = machine.run(machine.h.http.get("/api/timeseries", params=q, headers=etag))
        assert again.status_code == 304
        assert again.headers["x-cache-status"] == "STALE"
        # the rule accepts it as what it is marked
        machine.read_again_with_the_etag(
            first=0, interval="15min", length=3600000, offset=-10800000
        )
        # once the breaker lets upstream in again, the marked answer's ETag gets the truth
        machine.clock.ms += 31_000
        fresh = machine.run(machine.h.http.get("/api/timeseries", params=q, headers=etag))
        assert fresh.status_code == 200 and fresh.headers["x-cache-status"] != "STALE"
        got = {s["name"]: decode_series(s) for s in fresh.json()["series"]}
        truth = truth_of(machine.sim, names, start, end)
        want = {n: truth_buckets(a, 15 * MINUTE_MS, "max", start) for n, a in truth.items()}
        compare_all(machine.tally, "after the breaker", str(q), want, got)
        machine.assert_clean()
    finally:
        machine.teardown()


EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "12"))
STEPS = int(os.environ.get("STATEFUL_STEPS", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=not os.environ.get("STATEFUL_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate]
    + ([] if os.environ.get("STATEFUL_NO_SHRINK") else [Phase.shrink]),
)


def test_tsgate_answers_equal_upstream_through_every_change() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(TsgateMachine, settings=SETTINGS)


@pytest.mark.slow
def test_a_longer_run_of_the_state_machine() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        TsgateMachine,
        settings=settings(SETTINGS, max_examples=40, stateful_step_count=30),
    )
