"""Five-minute buckets as upstream's ``raw_data=false`` returns them (mean per bucket)."""

from __future__ import annotations

import numpy as np

from tsgate.series.model import Series

FIVE_MIN_MS = 300_000


def five_minute(s: Series) -> Series:
    """Mean of each 5-minute bucket, stamped at the bucket start; NaNs ignored."""
    if not len(s):
        return s
    starts = s.t_ms - s.t_ms % FIVE_MIN_MS
    edges = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    finite = np.isfinite(s.v)
    sums = np.add.reduceat(np.where(finite, s.v, 0.0), edges)
    counts = np.add.reduceat(finite.astype(np.int64), edges)
    keep = counts > 0
    return Series(s.name, starts[edges][keep], sums[keep] / counts[keep])
