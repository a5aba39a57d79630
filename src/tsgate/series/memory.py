"""The sizes of decoded data kept in this process (the MEMORY layer, ``tsgate.lru``)."""

from __future__ import annotations

from tsgate.core import rollups
from tsgate.core.model import Series


def series_bytes(s: Series) -> int:
    """What a decoded series holds: times, values and their sub-millisecond parts."""
    return int(s.t_ms.nbytes + s.v.nbytes + (s.us.nbytes if s.us is not None else 0))


def buckets_bytes(b: rollups.Buckets) -> int:
    return int(b.start_ms.nbytes) * len(rollups.ARRAY_FIELDS)
