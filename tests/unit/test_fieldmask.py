"""Flask-RESTX field masks: the grammar, how they apply, and hostile masks refused."""

from __future__ import annotations

import pytest

from tsgate.errors import BadParameter
from tsgate.wire.fieldmask import MAX_DEPTH, MAX_LENGTH, apply_mask, parse_mask

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
