"""What kind of signal a point carries, from its ACE point object.

- ``kind``: ``binary`` (on/off: fans, pumps, occupancy), ``multistate`` (modes) or
  ``analog``; from the BACnet ``object_type`` in ``bacnet_data``, else the object type in
  the point's name (``…/binaryValue/12``), else marker tags (``binary``, ``multistate``).
- ``mode`` (Project Haystack's ``hisMode``): ``cov`` when a value holds until the next
  sample (a ``hisMode``/``his_mode`` tag saying so, a ``cov`` marker tag, and every
  binary or multistate point), else what the analog point's reporting pattern shows
  (:func:`observed_mode`: irregular intervals and no repeated values are ``cov``, a
  regular cadence ``sampled``), else ``sampled``.

Either can be overridden per point: a ``kind`` kv tag (``binary``, ``multistate``,
``analog``, or Project Haystack's ``Bool``/``Number``) and ``TSGATE_POINT_KINDS``
(``point=kind[:mode],…``), which wins over tags and inference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tsgate.core.model import MS_PER_DAY, TimeArray, ValueArray
from tsgate.errors import ConfigError

KINDS = ("analog", "binary", "multistate")
MODES = ("sampled", "cov")

_OBJECT_TYPE = re.compile(r"(analog|binary|multistate)(input|output|value)", re.IGNORECASE)


def _from_object_type(text: str) -> str | None:
    match = _OBJECT_TYPE.search(text.replace("-", "").replace("_", ""))
    return match[1].lower() if match else None


# a ``kind`` kv tag: ours, or Project Haystack's value kinds
_TAG_KINDS = {
    "analog": "analog",
    "binary": "binary",
    "multistate": "multistate",
    "bool": "binary",
    "number": "analog",
}


def kind_of(point: Mapping[str, Any]) -> str:
    kv = point.get("kv_tags")
    if isinstance(kv, Mapping):
        tagged = kv.get("kind")
        if isinstance(tagged, str) and tagged.strip().lower() in _TAG_KINDS:
            return _TAG_KINDS[tagged.strip().lower()]
    bacnet = point.get("bacnet_data")
    if isinstance(bacnet, Mapping):
        object_type = bacnet.get("object_type")
        if isinstance(object_type, str) and (found := _from_object_type(object_type)):
            return found
    name = point.get("name")
    if isinstance(name, str):
        for segment in name.split("/"):
            if _OBJECT_TYPE.fullmatch(segment) and (found := _from_object_type(segment)):
                return found
    tags = _marker_tags(point)
    if "binary" in tags:
        return "binary"
    if tags & {"multistate", "multi-state", "enum"}:
        return "multistate"
    return "analog"


def mode_of(point: Mapping[str, Any], kind: str | None = None, observed: str | None = None) -> str:
    kv = point.get("kv_tags")
    if isinstance(kv, Mapping):
        for key in ("hisMode", "his_mode", "hismode"):
            value = kv.get(key)
            if isinstance(value, str) and value.strip().lower() in MODES:
                return value.strip().lower()
    if "cov" in _marker_tags(point):
        return "cov"
    if (kind or kind_of(point)) != "analog":
        return "cov"
    return observed if observed in MODES else "sampled"


# the reporting pattern says something from this many samples on
PATTERN_SAMPLES = 20
ON_CADENCE = 0.1  # an interval within 10 % of the median one keeps the cadence
_REGULAR = 0.8  # ... when this share of the intervals does: sampled
_IRREGULAR = 0.6  # ... when fewer than this share do, and values rarely repeat: cov
_REPEATS = 0.1


def observed_mode(t_ms: TimeArray, v: ValueArray) -> str | None:
    """The sampling mode a point's samples show, or None when they show neither:
    ``sampled`` when at least 80 % of the intervals are within 10 % of the median one (a
    regular cadence, lost samples aside); ``cov`` when fewer than 60 % are and fewer than
    10 % of the values repeat the one before (a device reporting on change suppresses
    repeats)."""
    return observed_pattern(t_ms, v)[0]


def observed_pattern(t_ms: TimeArray, v: ValueArray) -> tuple[str | None, int | None]:
    """:func:`observed_mode` of the samples, and the cadence they show while the value
    holds (:func:`holding_cadence_ms`)."""
    keep = ~np.isnan(v)
    t, values = t_ms[keep], v[keep]
    if t.size < PATTERN_SAMPLES:
        return None, None
    steps = np.diff(t)
    repeated = values[1:] == values[:-1]
    cadence = holding_cadence_ms(steps, repeated)
    median = float(np.median(steps))
    if median <= 0:
        return None, cadence
    regular = float(np.mean(np.abs(steps - median) <= ON_CADENCE * median))
    if regular >= _REGULAR:
        return "sampled", cadence
    repeats = float(np.mean(repeated))
    return ("cov" if regular < _IRREGULAR and repeats < _REPEATS else None), cadence


def holding_cadence_ms(steps: npt.NDArray[np.int64], repeated: npt.NDArray[np.bool_]) -> int | None:
    """The regular interval at which a point reports while its value holds, or None: the
    median of the intervals ending in a sample that repeats the one before (a report
    carrying no change), when there are at least :data:`PATTERN_SAMPLES` of them and 80 %
    are within 10 % of it. A polled point shows its polling interval (a fan status polled
    every 5 minutes: 5 minutes, whatever holes it has); a point reporting on change
    repeats its value only at a heartbeat, so it shows the heartbeat, or nothing when its
    changes break the beat; one that changes at every report (a compressor cycling at
    the polling rate) shows nothing, however regular its reports are."""
    held = steps[repeated]
    if held.size < PATTERN_SAMPLES:
        return None
    median = float(np.median(held))
    if median <= 0 or np.mean(np.abs(held - median) <= ON_CADENCE * median) < _REGULAR:
        return None
    return round(median)


# the stored periods that together decide a point's observed mode: those of the last four
# weeks of its data, up to its latest period
MODE_HISTORY_MS = 28 * MS_PER_DAY


class PeriodMode(NamedTuple):
    """What one stored period of a point showed (:func:`observed_mode` of its samples)."""

    point: str
    start_ms: int
    end_ms: int
    mode: str | None  # None: its samples show neither
    # the regular interval it reported at while its value held (holding_cadence_ms)
    cadence_ms: int | None = None


def judged_cadence_ms(
    periods: Iterable[tuple[int, int, str, int | None]], span: tuple[int, int]
) -> int | None:
    """The regular cadence a point shows over ``span`` (``[start, end)``) while its value
    holds, from ``(start_ms, end_ms, mode, cadence_ms)`` of its stored periods, or None.
    The periods overlapping ``span`` judge it (:func:`cadence_of_held`, each by the time
    of ``span`` it holds), so a point whose cadence changed is judged by the cadence of
    the periods judged. When no period overlaps ``span``, the one nearest to it judges."""
    start, end = span
    shown = list(periods)
    held = [
        (cadence, min(e, end) - max(s, start))
        for s, e, _, cadence in shown
        if s < end and start < e
    ]
    if held or not shown:
        return cadence_of_held(held)
    return min(shown, key=lambda p: (max(p[0] - end, start - p[1]), p[0]))[3]


def cadence_of_held(held: Sequence[tuple[int | None, int]]) -> int | None:
    """The cadence of a range from ``(cadence_ms or None, time of the range held)`` of
    its periods: when those with a cadence hold more of it than those without, their
    cadence at the median of the time they hold; else None."""
    regular = sorted((c, w) for c, w in held if c is not None and c > 0)
    weight = sum(w for _, w in regular)
    without = sum(w for c, w in held if c is None or c <= 0)
    if weight <= without:
        return None
    running = 0
    for cadence, w in regular:
        running += w
        if 2 * running >= weight:
            return cadence
    return None  # not reached: the running total ends at the weight


def settled_mode(periods: Iterable[tuple[int, int, str]]) -> str | None:
    """The mode a point's stored periods show together, from ``(start_ms, end_ms, mode)``
    of each period that showed one: over the :data:`MODE_HISTORY_MS` of data up to the
    end of the latest period, the mode holding more of that time (a tie: the latest
    period's). One week reporting on change among three heartbeating ones leaves a point
    ``sampled``; it turns ``cov`` once most of the four weeks are. A function of the
    periods alone, by their data time: the same stored data gives the same mode,
    whatever order its periods were read and written in."""
    shown = sorted(periods)
    if not shown:
        return None
    end = max(e for _, e, _ in shown)
    since = end - MODE_HISTORY_MS
    held = dict.fromkeys(MODES, 0)
    for start, stop, mode in shown:
        held[mode] += max(0, min(stop, end) - max(start, since))
    latest = max(shown, key=lambda p: (p[1], p[0]))[2]
    other = "cov" if latest == "sampled" else "sampled"
    return other if held[other] > held[latest] else latest


def _marker_tags(point: Mapping[str, Any]) -> set[str]:
    tags = point.get("marker_tags")
    if not isinstance(tags, list):
        return set()
    return {str(t).strip().lower() for t in tags}


@dataclass(frozen=True)
class PointKinds:
    """Configured kinds (and optionally modes) per point name (``TSGATE_POINT_KINDS``)."""

    overrides: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> PointKinds:
        """``point=kind`` or ``point=kind:mode`` entries, each checked; point names may
        hold ``=`` themselves (the last one separates)."""
        out: dict[str, tuple[str, str | None]] = {}
        for entry in entries:
            name, sep, value = entry.rpartition("=")
            kind, _, mode = value.strip().lower().partition(":")
            if not sep or not name.strip() or kind not in KINDS:
                raise ConfigError(
                    f"TSGATE_POINT_KINDS: {entry!r} is not point=kind[:mode] with a kind "
                    f"of {', '.join(KINDS)}"
                )
            if mode and mode not in MODES:
                raise ConfigError(
                    f"TSGATE_POINT_KINDS: {entry!r}: mode {mode!r} is not one of {', '.join(MODES)}"
                )
            out[name.strip()] = (kind, mode or None)
        return cls(out)

    def describe(self, point: Mapping[str, Any], observed: str | None = None) -> tuple[str, str]:
        """``(kind, mode)`` of a catalog point object (or just ``{"name": …}``);
        ``observed`` is the mode its reporting pattern showed, if any."""
        name = point.get("name")
        kind, mode = (
            self.overrides.get(name, (None, None)) if isinstance(name, str) else (None, None)
        )
        kind = kind or kind_of(point)
        return kind, mode or mode_of(point, kind, observed)
