"""Running one claimed job: its handler, heartbeats, progress, cancel, retry or death.

Handlers are looked up by kind in a registry (``HANDLERS``), so the chart query can be
plugged in without touching the runner. A handler reports progress through
``JobContext.step`` after each slice; ``step`` raises :class:`JobCancelled` when a
cancel was asked for and :class:`LeaseLost` when another attempt owns the job.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tsgate.background import Background
from tsgate.errors import TsgateError
from tsgate.jobs.model import Job, JobRequest, JobState, RetryPolicy, is_retryable
from tsgate.jobs.store import JobStore
from tsgate.object_store.base import ObjectStore
from tsgate.series.reader import SeriesReader

log = logging.getLogger("tsgate.jobs")


class JobCancelled(Exception):
    """The job was cancelled while running; raised between slices."""


class LeaseLost(Exception):
    """Another attempt owns the job now; this one must stop without writing its end."""


@dataclass(frozen=True)
class JobResult:
    key: str
    size: int
    samples: int


# (site, point names, token) -> each point's (kind, mode)
Describe = Callable[[str, Sequence[str], str], Awaitable[dict[str, tuple[str, str]]]]
# (site, point names, token, span judged) -> each point's gap limit in ms over the span
# (its chart gap bands)
GapLimits = Callable[[str, Sequence[str], str, tuple[int, int]], Awaitable[Mapping[str, int]]]


@dataclass
class JobContext:
    job: Job
    reader: SeriesReader
    objects: ObjectStore
    token: str
    _report: Callable[[float, int, int], Awaitable[None]]
    samples_done: int = 0
    samples_total: int = 0  # the samples the job expects to read (an estimate)
    describe: Describe | None = None  # each point's (kind, mode), as the chart API says
    gap_limits: GapLimits | None = None  # each point's gap limit, as the chart API says

    @property
    def request(self) -> JobRequest:
        return self.job.request

    def result_key(self, ext: str) -> str:
        # the job id is a hash, so the key is safe and one per job however many attempts
        return f"jobs/{self.job.id[:2]}/{self.job.id}/result.{ext}"

    async def step(self, done: int, total: int, samples: int) -> None:
        """Slice ``done`` of ``total`` finished with ``samples`` more samples; reported
        as the share of slices done, the samples done and the samples expected (at
        least those done)."""
        self.samples_done += samples
        expected = max(self.samples_total, self.samples_done)
        await self._report(100.0 * done / max(total, 1), self.samples_done, expected)


Handler = Callable[[JobContext], Awaitable[JobResult]]
TokenSource = Callable[[Job], Awaitable[str]]


@dataclass
class _Lease:
    held: bool = True
    cancel: bool = False


@dataclass
class JobRunner:
    store: JobStore
    reader: SeriesReader
    objects: ObjectStore
    handlers: dict[str, Handler]
    token_for: TokenSource
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_ms: int = 30_000
    heartbeat_s: float = 5.0
    clock_ms: Callable[[], int] = field(default=lambda: 0)
    rng: random.Random = field(default_factory=random.Random)
    describe: Describe | None = None
    gap_limits: GapLimits | None = None

    async def execute(self, job: Job) -> JobState | None:
        """Run ``job`` to its next state; ``None`` when the lease was lost.

        Cancelling the calling task (graceful shutdown) gives the job back uncounted.
        """
        lease = _Lease()
        beat = Background(f"tsgate-heartbeat-{job.id}")
        beat.start(lambda: self._beat(job, lease))
        try:
            state, values = await self._run(job, lease)
        except asyncio.CancelledError:
            await asyncio.shield(self.store.release(job, now_ms=self.clock_ms()))
            raise
        finally:
            await beat.stop()
        if state is None:
            log.warning("job %s: lease lost on attempt %d", job.id, job.attempts)
            return None
        if not await self.store.finish(job, state, now_ms=self.clock_ms(), **values):
            log.warning("job %s: lease lost before recording %s", job.id, state.value)
            return None
        return state

    async def _run(self, job: Job, lease: _Lease) -> tuple[JobState | None, dict[str, Any]]:
        handler = self.handlers.get(job.request.kind.value)
        try:
            if handler is None:
                raise TsgateError(f"no handler for job kind {job.request.kind.value!r}")
            token = await self.token_for(job)
            ctx = JobContext(
                job,
                self.reader,
                self.objects,
                token,
                _noop,
                describe=self.describe,
                gap_limits=self.gap_limits,
            )
            ctx._report = lambda pct, done, total: self._report(job, lease, pct, done, total)
            result = await handler(ctx)
        except JobCancelled:
            return JobState.CANCELLED, {"token_box": None}
        except LeaseLost:
            return None, {}
        except Exception as exc:  # every failure is recorded on the job, never lost
            return self._failure(job, exc)
        if lease.cancel:
            return JobState.CANCELLED, {"token_box": None}
        values = {
            "result_key": result.key,
            "result_size": result.size,
            "samples_done": result.samples,
            "samples_total": result.samples,  # exact once done
            "token_box": None,
        }
        return JobState.COMPLETED, values

    def _failure(self, job: Job, exc: Exception) -> tuple[JobState, dict[str, Any]]:
        detail = exc.detail if isinstance(exc, TsgateError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TsgateError):
            log.error("job %s failed unexpectedly", job.id, exc_info=exc)
        if not is_retryable(exc):
            # the same request would fail the same way: no point retrying
            return JobState.DEAD, {"error": f"not retryable: {detail}", "token_box": None}
        if job.attempts >= job.max_attempts:
            error = f"gave up after {job.attempts} attempts: {detail}"
            return JobState.DEAD, {"error": error, "token_box": None}
        delay_ms = int(self.retry.delay_s(job.attempts, self.rng) * 1000)
        return JobState.FAILED, {"error": detail, "run_after_ms": self.clock_ms() + delay_ms}

    async def _report(self, job: Job, lease: _Lease, pct: float, done: int, total: int) -> None:
        if not lease.cancel and lease.held:
            lease.held, lease.cancel = await self.store.heartbeat(
                job, now_ms=self.clock_ms(), lease_ms=self.lease_ms, progress=(pct, done, total)
            )
        if not lease.held:
            raise LeaseLost(job.id)
        if lease.cancel:
            raise JobCancelled(job.id)

    async def _beat(self, job: Job, lease: _Lease) -> None:
        # Between steps (a slow slice) the lease must still be kept alive.
        while lease.held:
            await asyncio.sleep(self.heartbeat_s)
            try:
                held, cancel = await self.store.heartbeat(
                    job, now_ms=self.clock_ms(), lease_ms=self.lease_ms
                )
            except TsgateError as exc:
                log.warning("job %s: heartbeat failed: %s", job.id, exc.detail)
                continue
            lease.held, lease.cancel = held, lease.cancel or cancel


async def _noop(pct: float, done: int, total: int) -> None:
    return None
