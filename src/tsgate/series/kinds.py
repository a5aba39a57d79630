"""What kind of signal a point carries, from its ACE point object.

- ``kind``: ``binary`` (on/off: fans, pumps, occupancy), ``multistate`` (modes) or
  ``analog``; from the BACnet ``object_type`` in ``bacnet_data``, else the object type in
  the point's name (``…/binaryValue/12``), else marker tags (``binary``, ``multistate``).
- ``mode`` (Project Haystack's ``hisMode``): ``cov`` when a value holds until the next
  sample (a ``hisMode``/``his_mode`` tag saying so, a ``cov`` marker tag, and every
  binary or multistate point), else ``sampled``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

KINDS = ("analog", "binary", "multistate")
MODES = ("sampled", "cov")

_OBJECT_TYPE = re.compile(r"(analog|binary|multistate)(input|output|value)", re.IGNORECASE)


def _from_object_type(text: str) -> str | None:
    match = _OBJECT_TYPE.search(text.replace("-", "").replace("_", ""))
    return match[1].lower() if match else None


def kind_of(point: Mapping[str, Any]) -> str:
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


def mode_of(point: Mapping[str, Any], kind: str | None = None) -> str:
    kv = point.get("kv_tags")
    if isinstance(kv, Mapping):
        for key in ("hisMode", "his_mode", "hismode"):
            value = kv.get(key)
            if isinstance(value, str) and value.strip().lower() in MODES:
                return value.strip().lower()
    if "cov" in _marker_tags(point):
        return "cov"
    return "cov" if (kind or kind_of(point)) != "analog" else "sampled"


def _marker_tags(point: Mapping[str, Any]) -> set[str]:
    tags = point.get("marker_tags")
    if not isinstance(tags, list):
        return set()
    return {str(t).strip().lower() for t in tags}
