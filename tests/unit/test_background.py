"""The background-loop helper: started once, stopped with cancellation and waiting,
errors logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tsgate.background import Background, stop_all

pytestmark = pytest.mark.anyio


async def test_start_and_stop_twice() -> None:
    runs: list[str] = []
    stopped = asyncio.Event()

    async def loop() -> None:
        runs.append("start")
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            runs.append("end")
            stopped.set()

    task = Background("t")
    assert task.start(loop)
    assert not task.start(loop)  # one loop at a time
    await asyncio.sleep(0)
    assert task.running and runs == ["start"]
    await task.stop()
    assert not task.running and runs == ["start", "end"] and stopped.is_set()
    await task.stop()  # stopping a stopped loop does nothing
    assert task.start(loop)  # and it can start again
    await asyncio.sleep(0)
    await task.stop()
    await task.stop()
    assert runs == ["start", "end", "start", "end"]


async def test_a_loop_that_was_never_started_stops() -> None:
    task = Background("idle")
    task.cancel()
    await task.stop()
    assert not task.running


async def test_stop_while_sleeping_cancels_and_waits_for_the_cleanup() -> None:
    cleaned = False

    async def loop() -> None:
        nonlocal cleaned
        try:
            await asyncio.sleep(3600)  # a loop between two rounds
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned = True
            raise

    task = Background("sleeper")
    task.start(loop)
    await asyncio.sleep(0)
    await task.stop()
    assert cleaned


async def test_a_crashing_loop_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    async def loop() -> None:
        raise RuntimeError("the disk is on fire")

    task = Background("crasher")
    with caplog.at_level(logging.ERROR, logger="tsgate.background"):
        task.start(loop)
        for _ in range(100):
            if not task.running:
                break
            await asyncio.sleep(0)
        assert not task.running
        await task.stop()  # stopping a loop that died does not raise again
    failed = [r for r in caplog.records if "crasher" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None and "the disk is on fire" in str(failed[0].exc_info[1])


async def test_a_loop_failing_while_being_stopped_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise ValueError("cleanup failed")

    task = Background("bad-cleanup")
    with caplog.at_level(logging.ERROR, logger="tsgate.background"):
        task.start(loop)
        await asyncio.sleep(0)
        await task.stop()
    assert any("bad-cleanup" in r.getMessage() for r in caplog.records)


async def test_a_grace_lets_the_loop_finish_by_itself() -> None:
    stop = asyncio.Event()
    finished = False

    async def loop() -> None:
        nonlocal finished
        await stop.wait()
        await asyncio.sleep(0)
        finished = True

    task = Background("graceful")
    task.start(loop)
    await asyncio.sleep(0)
    stop.set()
    await task.stop(grace_s=30)
    assert finished


async def test_a_grace_that_runs_out_cancels() -> None:
    async def loop() -> None:
        await asyncio.Event().wait()  # never ends by itself

    task = Background("stubborn")
    task.start(loop)
    await asyncio.sleep(0)
    await task.stop(grace_s=0.01)
    assert not task.running


async def test_the_callers_own_cancellation_is_not_swallowed() -> None:
    release = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()  # a slow cleanup

    task = Background("slow-cleanup")
    task.start(loop)
    await asyncio.sleep(0)
    stopper = asyncio.create_task(task.stop())
    await asyncio.sleep(0)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    release.set()
    for _ in range(10):  # the loop's cleanup ends, so no task outlives the test
        await asyncio.sleep(0)


async def test_stop_all_gives_a_grace_then_cancels_and_logs_the_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    ended: list[str] = []

    async def quick() -> None:
        await release.wait()
        ended.append("quick")

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("stuck")

    async def broken() -> None:
        raise OSError("the socket went away")

    tasks = [
        asyncio.create_task(quick(), name="quick"),
        asyncio.create_task(stuck(), name="stuck"),
        asyncio.create_task(broken(), name="broken"),
    ]
    await asyncio.sleep(0)
    release.set()
    with caplog.at_level(logging.ERROR, logger="tsgate.background"):
        await stop_all(tasks, grace_s=0.05)
    assert all(t.done() for t in tasks)
    assert sorted(ended) == ["quick", "stuck"]
    assert not tasks[0].cancelled() and tasks[1].cancelled()
    failed = [r.getMessage() for r in caplog.records]
    assert failed == ["background task broken failed"]
    await stop_all([])  # nothing to stop
