"""Flask-RESTX field masks: the grammar, how they apply, and hostile masks refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.errors import BadParameter
from tsgate.wire.fieldmask import MAX_DEPTH, MAX_LENGTH, Mask, apply_mask, parse_mask

PAGE = {"page": 1, "total": 2, "items": [{"name": "a", "id": 1}, {"name": "b", "id": 2}]}


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("", {}),
        ("name", {"name": None}),
        ("{name, id}", {"name": None, "id": None}),
        ("items{name},total", {"items": {"name": None}, "total": None}),
        ("{a{b{c}},*}", {"a": {"b": {"c": None}}, "*": None}),
    ],
)
def test_masks_parse(text: str, mask: object) -> None:
    assert parse_mask(text) == mask


def test_masks_apply_to_objects_lists_and_missing_fields() -> None:
    assert apply_mask(PAGE, parse_mask("items{name}")) == {"items": [{"name": "a"}, {"name": "b"}]}
    assert apply_mask(PAGE, parse_mask("total,*")) == PAGE
    assert apply_mask(PAGE, parse_mask("nope")) == {"nope": None}
    assert apply_mask({"items": None}, parse_mask("items{name}")) == {"items": None}
    assert apply_mask(PAGE, {}) is PAGE


@pytest.mark.parametrize(
    "text",
    [
        "{name",
        "name}",
        "{{name}}",
        "a,{b}",
        "{a}b",
        "{" * 10_000,
        "a{" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1),
        "a," * MAX_LENGTH,
    ],
)
def test_hostile_masks_are_a_400_naming_the_header(text: str) -> None:
    with pytest.raises(BadParameter) as refused:
        parse_mask(text)
    assert refused.value.param == "X-Fields"


def _by_definition(data: Any, mask: Mask) -> Any:
    """Flask-RESTX's rule, element by element (the reference for the page shortcut)."""
    if not mask:
        return data
    if isinstance(data, list):
        return [_by_definition(item, mask) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    if "*" in mask:
        out.update((k, v) for k, v in data.items() if k not in mask)
    for key, nested in mask.items():
        if key != "*":
            value = data.get(key)
            keep = nested is not None and value is not None
            out[key] = _by_definition(value, nested) if keep else value
    return out


_KEYS = st.sampled_from(["name", "value", "time", "x", "*"])
_MASKS: st.SearchStrategy[Mask] = st.recursive(
    st.dictionaries(_KEYS, st.none(), max_size=4),
    lambda inner: st.dictionaries(_KEYS, st.one_of(st.none(), inner), max_size=4),
    max_leaves=8,
)
_VALUES = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=3)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_KEYS.filter(lambda k: k != "*"), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_MASKS, _VALUES)
def test_masks_apply_as_defined_element_by_element(mask: Mask, data: Any) -> None:
    assert apply_mask(data, mask) == _by_definition(data, mask)
    rows = [data, {"name": "p", "value": "1.5"}, 3, None]
    assert apply_mask(rows, mask) == _by_definition(rows, mask)
