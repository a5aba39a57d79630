"""The Prometheus data model of ACE points: one metric, ``ace``, with a label set per point.

Labels: ``site``, ``point`` (the full ACE name), ``unit``, ``kind`` (the ACE
``point_type``) and ``tags`` (the marker tags, sorted, as ``,tag1,tag2,``: match one with
``tags=~".*,vav,.*"``). Empty labels are left out, as Prometheus does. Label matchers are
Prometheus's: regular expressions are anchored at both ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

METRIC = "ace"
NAME = "__name__"
DEFAULT_COLLECT_S = 300
_UNIT_KEYS = ("unit", "units", "engineering_units", "unit_of_measure")

Labels = tuple[tuple[str, str], ...]  # sorted by name: hashable and comparable


@dataclass(frozen=True)
class Matcher:
    """``name op value`` with ``op`` one of ``=``, ``!=``, ``=~``, ``!~``."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _regex(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


def matches_all(labels: Mapping[str, str], matchers: Iterable[Matcher]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True)
class SeriesRef:
    """One point as a Prometheus series: where to read it and how it is labelled."""

    site: str
    point: str
    labels: Labels
    lookback_ms: int  # bare selectors look back twice the point's collect interval

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def _unit(point: Mapping[str, Any]) -> str:
    bacnet = point.get("bacnet_data")
    sources = [point.get("kv_tags"), bacnet.get("additional_properties") if bacnet else None]
    for tags in sources:
        if isinstance(tags, Mapping):
            for key in _UNIT_KEYS:
                value = tags.get(key)
                if isinstance(value, str) and value:
                    return value
    return ""


def _tags(point: Mapping[str, Any]) -> str:
    marker = point.get("marker_tags") or []
    names = sorted({str(t).strip().lower() for t in marker if str(t).strip()})
    return "," + ",".join(names) + "," if names else ""


def series_of(site: str, point: Mapping[str, Any]) -> SeriesRef:
    """The series of an ACE point object (from a site's ``configured_points``)."""
    name = str(point["name"])
    found = {
        NAME: METRIC,
        "site": site,
        "point": name,
        "unit": _unit(point),
        "kind": str(point.get("point_type") or ""),
        "tags": _tags(point),
    }
    interval = point.get("collect_interval")
    seconds = interval if isinstance(interval, int) and interval > 0 else DEFAULT_COLLECT_S
    return SeriesRef(site, name, freeze(found), 2 * seconds * 1000)


def freeze(labels: Mapping[str, str]) -> Labels:
    """A label set as a sorted tuple, empty values dropped."""
    return tuple(sorted((k, v) for k, v in labels.items() if v))


def site_candidates(sites: Sequence[str], matchers: Iterable[Matcher]) -> list[str]:
    """The sites a selector can match, judged by its ``site`` matchers alone."""
    on_site = [m for m in matchers if m.name == "site"]
    return [s for s in sites if all(m.matches({"site": s}) for m in on_site)]
