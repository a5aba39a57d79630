"""Work beside the access check (``series.reader._beside_access``): its result only once
the check has passed, a refusal cancels it at once, and a refused token gets the
refusal, never the work's own error or result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from tsgate.errors import Forbidden, StorageError
from tsgate.series.reader import _beside_access

pytestmark = pytest.mark.anyio


async def _check(delay_s: float, refuse: bool) -> None:
    await asyncio.sleep(delay_s)
    if refuse:
        raise Forbidden("upstream refused access")


async def test_the_result_waits_for_the_check() -> None:
    events: list[str] = []

    async def work(gate: Awaitable[None]) -> int:
        events.append("worked")  # done long before the check answers
        return 7

    async def check() -> None:
        await _check(0.05, refuse=False)
        events.append("checked")

    assert await _beside_access(check(), work) == 7
    assert events == ["worked", "checked"]


async def test_a_refusal_cancels_the_work_at_once() -> None:
    cancelled = asyncio.Event()
    stored: list[int] = []

    async def work(gate: Awaitable[None]) -> int:
        try:
            await asyncio.sleep(10)  # an index read, the first requests
            await gate
            stored.append(1)
            return 1
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(Forbidden):
        await _beside_access(_check(0.02, refuse=True), work)
    assert cancelled.is_set() and not stored
    assert loop.time() - began < 5  # not after the work's 10 s


async def test_the_gate_stops_work_that_would_store_before_the_refusal() -> None:
    stored: list[int] = []

    async def work(gate: Awaitable[None]) -> None:
        await gate  # nothing is stored before the check has passed
        stored.append(1)

    with pytest.raises(Forbidden):
        await _beside_access(_check(0.02, refuse=True), work)
    await asyncio.sleep(0.05)
    assert not stored


async def test_a_refused_token_gets_the_refusal_not_the_works_error() -> None:
    async def work(gate: Awaitable[None]) -> None:
        raise StorageError("the index is down")

    with pytest.raises(Forbidden):
        await _beside_access(_check(0.02, refuse=True), work)
    with pytest.raises(StorageError):  # a token that may read: the work's own error
        await _beside_access(_check(0.02, refuse=False), work)


async def test_cancelling_the_caller_cancels_both() -> None:
    running: list[str] = []

    async def check() -> None:
        running.append("check")
        try:
            await asyncio.sleep(10)
        finally:
            running.remove("check")

    async def work(gate: Awaitable[None]) -> None:
        running.append("work")
        try:
            await asyncio.sleep(10)
        finally:
            running.remove("work")

    task = asyncio.ensure_future(_beside_access(check(), work))
    await asyncio.sleep(0.02)
    assert sorted(running) == ["check", "work"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert running == []
