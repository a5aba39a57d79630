"""CPU-heavy work of large reads and writes, run off the event loop.

Decoding, bucketing, encoding and compressing a whole site's day takes seconds; on the
event loop it would stall every other answer meanwhile (cached ones included). Work this
large runs in a worker thread instead (numpy and zstd release the GIL for their loops,
and the event loop gets its turns in between); small work stays inline, where a
thread's hand-over would cost more than it saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

OFFLOAD_MIN_SAMPLES = 100_000  # work over at least this many samples goes to a thread


async def run(samples: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, in a worker thread when it works through ``samples`` or
    more samples."""
    if samples >= OFFLOAD_MIN_SAMPLES:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)
