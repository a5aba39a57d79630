"""Token-bucket arithmetic, shared by the in-memory cache (the Redis adapter runs the
same steps in a Lua script so that concurrent servers update one bucket atomically)."""

from __future__ import annotations

import math

from tsgate.cache.base import Bucket


def take_token(
    tokens: float,
    last_s: float,
    now_s: float,
    rate_per_s: float,
    burst: int,
    cost: float = 1.0,
    force: bool = False,
    need: float | None = None,
) -> tuple[float, Bucket]:
    """Refill a bucket holding ``tokens`` at ``last_s`` up to ``now_s``, then take ``cost``
    if it holds at least ``need`` (default: ``cost``).

    ``force`` takes it even from a bucket that cannot pay (work already done is charged
    after the fact): the bucket goes into debt, at most ``burst`` deep, and refuses
    until it has refilled. Returns the new token count (to store with ``now_s``) and the
    outcome. A new bucket starts full: call with ``tokens=burst``.
    """
    need = cost if need is None else need
    elapsed = max(0.0, now_s - last_s)
    tokens = min(float(burst), tokens + elapsed * rate_per_s)
    allowed = force or tokens >= need
    if allowed:
        tokens = max(-float(burst), tokens - cost)
    retry_after_s = 0.0 if allowed else (need - tokens) / rate_per_s
    reset_s = (burst - tokens) / rate_per_s
    return tokens, Bucket(
        allowed=allowed,
        remaining=math.floor(tokens),
        retry_after_s=retry_after_s,
        reset_s=reset_s,
    )
