"""What an upstream data request costs, as measured: a fixed part (latency) and a part
per sample carried (transfer), fitted over the recent requests.

The ACE client reports each data request it makes (its HTTP time, retries included, and
the sample rows it carried); the reader's request planner (``series/fetching.py``)
shapes its requests by the fit. Until enough requests of different sizes were seen the
fit is unknown (``None``) and the policy's figures stand in.

**The fit is of the quickest requests.** Requests run side by side, and a request that
waits behind others upstream (a busy server, a queue per token) takes longer than it
costs: fitted over every request, those waits bend the line (seen: 52 ms + 267 µs a
sample for an upstream of 200 ms + 100 µs, after a read of many parallel parts). Waiting
only ever adds time, so the cost is the lower edge of what was seen: the requests are
sorted into size classes (half an octave of samples each), the quickest of each class
kept, and the line fitted through those by Theil–Sen (the median of the slopes between
every two), so that a class whose every request waited does not move it either.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

KEEP = 256  # requests the fit looks at, the most recent
MIN_SEEN = 8
CLASSES_PER_OCTAVE = 2  # size classes: half an octave of samples each


class RequestCosts:
    def __init__(self, keep: int = KEEP) -> None:
        self._seen: deque[tuple[float, float]] = deque(maxlen=keep)  # (samples, seconds)
        self._fitted: tuple[float, float] | None = None
        self._fresh = True  # ``_fitted`` is the fit of what ``_seen`` holds

    def observe(self, seconds: float, samples: int) -> None:
        if seconds >= 0 and samples >= 0:
            self._seen.append((float(samples), seconds))
            self._fresh = False

    def estimate(self) -> tuple[float, float] | None:
        """``(latency_s, seconds per sample)``, both ≥ 0; ``None`` until known."""
        if not self._fresh:
            self._fitted, self._fresh = self._fit(), True
        return self._fitted

    def _fit(self) -> tuple[float, float] | None:
        if len(self._seen) < MIN_SEEN:
            return None
        quickest: dict[int, tuple[float, float]] = {}
        for x, t in self._seen:
            size_class = int(math.log2(x + 1) * CLASSES_PER_OCTAVE)
            if size_class not in quickest or t < quickest[size_class][1]:
                quickest[size_class] = (x, t)
        return _theil_sen(list(quickest.values()))


def _theil_sen(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The line ``t = latency + per_sample × x`` through ``points`` (both clamped at 0):
    the median of the slopes between every two points, the median intercept at that
    slope (a few points far off the line, such as a size class whose every request
    waited, move neither); ``None`` when the sizes do not differ enough to tell the two
    apart."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    if sum((x - mean_x) ** 2 for x, _ in points) <= (0.05 * mean_x) ** 2 * n:
        return None  # requests of one size: latency and transfer cannot be told apart
    slopes = [
        (t2 - t1) / (x2 - x1)
        for i, (x1, t1) in enumerate(points)
        for x2, t2 in points[i + 1 :]
        if x2 != x1
    ]
    per_sample = max(0.0, statistics.median(slopes))
    latency = statistics.median(t - per_sample * x for x, t in points)
    return max(0.0, latency), per_sample
