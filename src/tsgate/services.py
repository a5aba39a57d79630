"""What a request handler, a job or a command may use: the process's services.

Typed only with the narrow Protocols their owners declare for what handlers call (and
plain values: settings, policy, counters), never with a domain class or an adapter:
``tsgate.wiring`` builds the concrete objects and fills this in, and only the entry
points (``app``, ``cli``) import ``wiring``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tsgate.cache.base import Cache
from tsgate.clock import Clock, wall_clock_ms
from tsgate.core.kinds import PointKinds
from tsgate.files.model import FileStore
from tsgate.jobs.service import Jobs
from tsgate.jobs.worker import NamedWorker
from tsgate.object_store.base import ObjectStore
from tsgate.ops.alerts import Alerts, CurrentAlerts
from tsgate.ops.maintenance import MaintenancePass
from tsgate.ops.monitor import MonitorLog, MonitorView
from tsgate.ops.recorder import RequestRecorder
from tsgate.ops.stats import StatsTable
from tsgate.ops.warm import ChartWarmCounters
from tsgate.series.access import Access
from tsgate.series.catalog import Catalog, PointRows
from tsgate.series.hourly import QualityMemo, QualityMemory
from tsgate.series.index import ChunkIndex
from tsgate.series.live import LiveStreams
from tsgate.series.planning import CachePolicy
from tsgate.series.reader import SeriesReads
from tsgate.series.recheck import RecheckCounters
from tsgate.series.savedcharts import SavedChartStore
from tsgate.series.zones import Zones
from tsgate.settings import Settings
from tsgate.upstream.guarded import GuardedReads


class DatabaseHealth(Protocol):
    """The probes of the database the health and stats endpoints report."""

    async def ping(self) -> float:
        """Round-trip latency of a trivial query, in seconds."""
        ...

    async def replica_health(self) -> list[dict[str, object]]:
        """Each read replica's state and lag, checked now."""
        ...

    async def size_bytes(self) -> int:
        """Bytes the database occupies."""
        ...


@dataclass
class Services:
    """Everything a request handler may use, opened once per process."""

    settings: Settings
    upstream: GuardedReads  # the typed reads, with the circuit and the counters
    health: DatabaseHealth
    objects: ObjectStore
    reader: SeriesReads
    policy: CachePolicy  # the reader's, for the headers and freshness that follow from it
    access: Access
    catalog: Catalog
    zones: Zones
    cache: Cache
    recorder: RequestRecorder
    jobs: Jobs
    worker: NamedWorker
    maintenance: MaintenancePass
    live: LiveStreams
    # the stored rows handlers read directly, each through the Protocol its owner declares
    points: PointRows
    chunks: ChunkIndex
    charts: SavedChartStore
    files: FileStore
    monitoring: MonitorLog
    stats: StatsTable
    salt: bytes = field(repr=False)
    alerts: CurrentAlerts = field(default_factory=Alerts)
    rechecks: RecheckCounters = field(default_factory=RecheckCounters)
    monitor: MonitorView | None = None
    kinds: PointKinds = field(default_factory=PointKinds)
    quality: QualityMemory = field(default_factory=QualityMemo)
    clock_ms: Clock = field(default=wall_clock_ms, repr=False)  # now, for handlers
    warming: ChartWarmCounters = field(default_factory=ChartWarmCounters)
