"""The core's value type of a timeseries, defined in :mod:`tsgate.samples`.

It lives below both the series core and the upstream seam, which reads into it; the core
imports it from here.
"""

from __future__ import annotations

from tsgate.samples import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    MicroArray,
    Series,
    TimeArray,
    ValueArray,
    concat,
)

__all__ = [
    "MS_PER_DAY",
    "MS_PER_HOUR",
    "MS_PER_MINUTE",
    "MicroArray",
    "Series",
    "TimeArray",
    "ValueArray",
    "concat",
]
