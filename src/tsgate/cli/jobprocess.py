"""The job workers of ``tsgate serve`` as child processes (``TSGATE_JOB_PROCESSES``).

A cold year fetched for a job or an export encoded to CSV holds the interpreter for
seconds at a time; in the server process that is seconds when no cached chart is
answered. So ``tsgate serve`` runs ``tsgate worker`` beside its server processes, on the
same settings (the embedded SQLite database and object folder are shared by every
process, as with ``--workers N``), and its server processes run no job themselves.

Each child is watched by a thread of the serving process: one that dies is logged as an
error and started again (after a pause that grows while it keeps dying early, up to
:data:`RESTART_CAP_S`); its job, if any, returns to the queue when its lease expires.
When the server stops, the children get SIGTERM (a job in hand is given back) and are
killed if still there after the shutdown timeout. A child whose parent dies outright
gets SIGTERM from the kernel (``--exit-with-parent``).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("tsgate.jobs")
RESTART_FIRST_S = 0.5
RESTART_CAP_S = 30.0
STEADY_S = 60.0  # a child that ran this long before dying restarts at once again


class JobProcesses:
    """``count`` watched ``tsgate worker`` children, from :meth:`start` to :meth:`stop`."""

    def __init__(
        self,
        count: int,
        env: Mapping[str, str],
        *,
        stop_timeout_s: float,
        argv: Sequence[str] | None = None,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.count = count
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.cleanup = cleanup  # called once the children are gone (by each stop)
        self.argv = list(argv or [sys.executable, "-m", "tsgate", "worker", "--exit-with-parent"])
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # slot -> its process now
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for slot in range(self.count):
            thread = threading.Thread(
                target=self._watch, args=(slot,), name=f"tsgate-job-process-{slot}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def terminate(self) -> None:
        """SIGTERM to each child (none is started again), without waiting for them."""
        self._stopping.set()
        with self._lock:
            children = list(self._children.values())
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM to each child, then SIGKILL to what is left after the timeout; then
        ``cleanup``."""
        self.terminate()
        with self._lock:
            children = list(self._children.values())
        deadline = time.monotonic() + self.stop_timeout_s
        for child in children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("job worker process %d did not stop in time: killed", child.pid)
                child.kill()
                child.wait()
        for thread in self._threads:
            thread.join(self.stop_timeout_s)
        if self.cleanup is not None:
            self.cleanup()

    def _spawn(self, slot: int) -> subprocess.Popen[bytes] | None:
        with self._lock:
            # under the lock: stop() sees either no child or this one
            if self._stopping.is_set():
                return None
            child = subprocess.Popen(self.argv, env=self.env)  # noqa: S603 - our own command
            self._children[slot] = child
        log.info("job worker process %d started", child.pid)
        return child

    def _watch(self, slot: int) -> None:
        pause = RESTART_FIRST_S
        while True:
            started = time.monotonic()
            try:
                child = self._spawn(slot)
            except OSError as exc:
                log.error("job worker process could not start: %s", exc)
                child = None
                if self._stopping.wait(pause):
                    return
                pause = min(RESTART_CAP_S, pause * 2)
                continue
            if child is None:
                return
            code = child.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_S:
                pause = RESTART_FIRST_S
            log.error(
                "job worker process %d exited (%s); starting another in %g s",
                child.pid,
                _exit_text(code),
                pause,
            )
            if self._stopping.wait(pause):
                return
            pause = min(RESTART_CAP_S, pause * 2)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
