"""The ``memory://`` queue's wake-ups across processes (a directory of Unix datagram
sockets, :mod:`tsgate.jobqueue.memory`): each waiting queue gets every id published by
another, a flood stays bounded, and a missing directory or a dead socket changes nothing
but the latency."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tsgate.jobqueue.memory import MAX_PENDING, MemoryJobQueue

pytestmark = pytest.mark.anyio


def names(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path))


async def listening(path: Path) -> MemoryJobQueue:
    queue = MemoryJobQueue(str(path))
    assert await queue.wait(5.0) is None  # binds, then returns at once (look again)
    return queue


async def test_each_listener_gets_what_another_publishes_once(tmp_path: Path) -> None:
    a, b = await listening(tmp_path), await listening(tmp_path)
    server = MemoryJobQueue(str(tmp_path))
    try:
        assert len(names(tmp_path)) == 2  # the publisher binds nothing
        await server.publish("job-1")
        await server.publish("job-2")
        assert [await a.wait(5.0), await a.wait(5.0)] == ["job-1", "job-2"]
        assert [await b.wait(5.0), await b.wait(5.0)] == ["job-1", "job-2"]
        assert await a.wait(0.05) is None  # once each
        await a.publish("own")  # its own socket is skipped: it has it already
        assert [await a.wait(5.0), await a.wait(0.05)] == ["own", None]
        assert await b.wait(5.0) == "own"
    finally:
        for q in (a, b, server):
            await q.aclose()
    assert names(tmp_path) == []  # closed listeners remove their sockets


async def test_a_flood_of_publishes_stays_bounded(tmp_path: Path) -> None:
    listener = await listening(tmp_path)
    server = MemoryJobQueue(str(tmp_path))
    try:
        for n in range(3 * MAX_PENDING):  # never blocks: a full socket buffer drops
            await server.publish(f"job-{n}")
        got = []
        while (job_id := await listener.wait(0.2)) is not None:
            got.append(job_id)
        assert 0 < len(got) <= MAX_PENDING
        assert len(set(got)) == len(got)
        assert set(got) <= {f"job-{n}" for n in range(3 * MAX_PENDING)}
        await server.publish("after")  # and wakes it again once read
        assert await listener.wait(5.0) == "after"
    finally:
        await listener.aclose()
        await server.aclose()


async def test_a_socket_nobody_reads_is_removed_and_junk_is_harmless(tmp_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "1-dead.sock"))
    dead.close()  # as a process killed outright leaves it
    listener = await listening(tmp_path)
    server = MemoryJobQueue(str(tmp_path))
    try:
        junk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        (bound,) = (name for name in names(tmp_path) if name != "1-dead.sock")
        junk.sendto(b"\xff\xfe", str(tmp_path / bound))
        junk.close()
        await server.publish("job-1")
        assert await listener.wait(5.0) == "job-1"  # the undecodable datagram is skipped
        assert "1-dead.sock" not in names(tmp_path)
    finally:
        await listener.aclose()
        await server.aclose()


async def test_without_the_directory_it_is_a_local_queue(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    queue = MemoryJobQueue(str(gone))
    try:
        await queue.publish("job-1")  # nothing to send to: no error
        assert await queue.wait(5.0) == "job-1"  # cannot bind: waits as a local queue
        assert await queue.wait(0.05) is None
    finally:
        await queue.aclose()
    assert not gone.exists()
