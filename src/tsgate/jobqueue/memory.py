"""An in-process queue (``memory://``): the embedded server with its inline worker.

When ``tsgate serve`` runs its jobs in child processes it gives every process of the
server a private directory (its path in :data:`WAKE_DIR_ENV`). A queue that waits
binds a Unix datagram socket there; ``publish`` sends the id to every socket in the
directory as well, so a job posted to a server process wakes the job processes at once.
It is only a hint: sends never block (a datagram that finds a full socket buffer is
dropped) and every error is ignored, since workers poll the store anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from typing import Self

log = logging.getLogger("tsgate.jobs")

# wake-ups kept unread at most: a server whose jobs run in other processes (whose queues
# are their own) publishes to a queue nobody reads; the oldest go, the sweep finds all
MAX_PENDING = 1024
# internal: the directory of the wake-up sockets of one ``tsgate serve`` (no setting)
WAKE_DIR_ENV = "_TSGATE_WAKE_DIR"
SOCKET_SUFFIX = ".sock"
MAX_DATAGRAM = 512  # a job id is far shorter; a longer datagram is cut (and ignored)


class MemoryJobQueue:
    """An ``asyncio.Queue`` of ids; each ``from_url`` call gives a new, empty queue.

    Alone it reaches only this process's worker. With ``wake_dir`` (``tsgate serve``'s
    job processes) it also wakes the waiting queues of the other processes given the
    same directory; workers elsewhere find new jobs by their poll of the store
    (``TSGATE_JOB_POLL_S``)."""

    def __init__(self, wake_dir: str | None = None) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._wake_dir = wake_dir
        self._sender: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._listen_path: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listen_tried = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(os.environ.get(WAKE_DIR_ENV) or None)

    def _put(self, job_id: str) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            self._queue.get_nowait()
        self._queue.put_nowait(job_id)

    async def publish(self, job_id: str) -> None:
        self._put(job_id)
        if self._wake_dir is not None:
            self._announce(job_id.encode())

    def _announce(self, data: bytes) -> None:
        """``data`` to every other socket of the directory, without waiting for any."""
        assert self._wake_dir is not None
        try:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            entries = list(os.scandir(self._wake_dir))
        except OSError:
            return  # no directory (any more): the poll finds the job
        for entry in entries:
            if not entry.name.endswith(SOCKET_SUFFIX) or entry.path == self._listen_path:
                continue
            try:
                self._sender.sendto(data, entry.path)
            except ConnectionRefusedError:
                # nobody reads it: left by a process killed outright
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except OSError:
                pass  # its buffer is full (the wake-up is dropped), or it went meanwhile

    async def wait(self, timeout_s: float) -> str | None:
        if self._wake_dir is not None and not self._listen_tried:
            self._listen_tried = True
            if self._listen(self._wake_dir):
                # what was published before the socket was bound woke nobody: the caller
                # looks at the store once more, and from now on every publish reaches it
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    def _listen(self, wake_dir: str) -> bool:
        path = os.path.join(wake_dir, f"{os.getpid()}-{secrets.token_hex(4)}{SOCKET_SUFFIX}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.setblocking(False)
            listener.bind(path)
            loop = asyncio.get_running_loop()
            loop.add_reader(listener.fileno(), self._receive)
        except OSError as exc:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            log.warning("job wake-ups off (%s): new jobs are found by the poll", exc)
            return False
        self._listener, self._listen_path, self._loop = listener, path, loop
        return True

    def _receive(self) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(MAX_PENDING):  # bounded: a flood leaves the loop free between reads
            try:
                data = listener.recv(MAX_DATAGRAM)
            except OSError:
                return  # drained (BlockingIOError), or closed
            with contextlib.suppress(UnicodeDecodeError):
                self._put(data.decode())

    async def aclose(self) -> None:
        if self._listener is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        if self._listen_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._listen_path)
            self._listen_path = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        while not self._queue.empty():
            self._queue.get_nowait()
