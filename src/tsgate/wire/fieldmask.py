"""Flask-RESTX field masks (the ``X-Fields`` header): parse ``{a,b{c,d},*}`` and apply it.

The grammar and results follow Flask-RESTX: the outer braces are optional, a nested
mask applies to an object or to every object of a list, ``*`` keeps every other field,
and a masked field the object lacks is answered as ``null``.
"""

from __future__ import annotations

import re
from typing import Any

from tsgate.errors import BadParameter

HEADER = "X-Fields"
MAX_LENGTH = 4096  # characters of a mask
MAX_DEPTH = 16  # nested braces
_TOKEN = re.compile(r"\{|\}|,|[^{},\s]+")

Mask = dict[str, "Mask | None"]


def parse_mask(text: str) -> Mask:
    """``'a,b{c}'`` -> ``{'a': None, 'b': {'c': None}}``; a clear 400 on a malformed mask."""
    text = text.strip()
    if not text:
        return {}
    if len(text) > MAX_LENGTH:
        raise _error(f"longer than {MAX_LENGTH} characters")
    if not text.startswith("{"):
        text = "{" + text + "}"
    parts = _TOKEN.findall(text)
    mask, end = _group(parts, 1, 1)
    if end != len(parts):
        raise _error(f"unexpected {parts[end]!r} after the closing bracket")
    return mask


def _group(parts: list[str], pos: int, depth: int) -> tuple[Mask, int]:
    """The fields from ``parts[pos]`` to the matching ``}``; returns them and the next index."""
    if depth > MAX_DEPTH:
        raise _error(f"nested deeper than {MAX_DEPTH} levels")
    out: Mask = {}
    last: str | None = None
    while pos < len(parts):
        part = parts[pos]
        if part == "}":
            return out, pos + 1
        if part == "{":
            if last is None:
                raise _error("unexpected opening bracket")
            out[last], pos = _group(parts, pos + 1, depth + 1)
            last = None
            continue
        last = None if part == "," else part
        if last is not None:
            out[last] = None
        pos += 1
    raise _error("missing closing bracket")


def _error(reason: str) -> BadParameter:
    return BadParameter(HEADER, f"mask parse error: {reason}")


def apply_mask(data: Any, mask: Mask) -> Any:
    """``data`` reduced to the fields ``mask`` names (lists: every element)."""
    if not mask:
        return data
    if isinstance(data, list):
        if "*" not in mask and all(nested is None for nested in mask.values()):
            # flat fields over many rows (a page of samples): one comprehension per row
            keys = tuple(mask)
            return [
                {k: item.get(k) for k in keys} if isinstance(item, dict) else apply_mask(item, mask)
                for item in data
            ]
        return [apply_mask(item, mask) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    if "*" in mask:
        out.update((k, v) for k, v in data.items() if k not in mask)
    for key, nested in mask.items():
        if key == "*":
            continue
        value = data.get(key)
        out[key] = apply_mask(value, nested) if nested is not None and value is not None else value
    return out
