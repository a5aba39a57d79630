"""What an upstream data request costs, as measured: a fixed part (latency) and a part
per sample carried (transfer), fitted by least squares over the recent requests.

The ACE client reports each data request it makes (its HTTP time, retries included, and
the sample rows it carried); the reader's request planner (``series/fetching.py``)
shapes its requests by the fit. Until enough requests of different sizes were seen the
fit is unknown (``None``) and the policy's figures stand in.
"""

from __future__ import annotations

from collections import deque

KEEP = 256  # requests the fit looks at, the most recent
MIN_SEEN = 8


class RequestCosts:
    def __init__(self, keep: int = KEEP) -> None:
        self._seen: deque[tuple[float, float]] = deque(maxlen=keep)  # (samples, seconds)

    def observe(self, seconds: float, samples: int) -> None:
        if seconds >= 0 and samples >= 0:
            self._seen.append((float(samples), seconds))

    def estimate(self) -> tuple[float, float] | None:
        """``(latency_s, seconds per sample)``, both ≥ 0; ``None`` until known."""
        if len(self._seen) < MIN_SEEN:
            return None
        n = len(self._seen)
        mean_x = sum(x for x, _ in self._seen) / n
        mean_t = sum(t for _, t in self._seen) / n
        var_x = sum((x - mean_x) ** 2 for x, _ in self._seen)
        if var_x <= (0.05 * mean_x) ** 2 * n:
            return None  # requests of one size: latency and transfer cannot be told apart
        cov = sum((x - mean_x) * (t - mean_t) for x, t in self._seen)
        per_sample = max(0.0, cov / var_x)
        latency = max(0.0, mean_t - per_sample * mean_x)
        return latency, per_sample
