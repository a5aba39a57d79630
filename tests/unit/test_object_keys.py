"""Object key and prefix validation: what may name an object, and what never can."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsgate.object_store.base import (
    MAX_KEY_BYTES,
    InvalidKey,
    check_range,
    prefix_parent,
    validate_key,
    validate_prefix,
)

_SEGMENT_CHARS = st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-"
)
_SEGMENTS = st.text(_SEGMENT_CHARS, min_size=1, max_size=12).filter(lambda s: s not in {".", ".."})


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "chunks/site=campus/point=3f9a/raw/2025-10-12.zst",
        "...",  # an odd but harmless file name
        ".hidden",
        "a-b_c=d.e",
        "x" * MAX_KEY_BYTES,
    ],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "a/",
        "a//b",
        ".",
        "..",
        "../x",
        "a/../b",
        "a/./b",
        "a\\b",
        "a\x00b",
        "a b",
        "a:b",
        "~tmp",
        "é",
        "C:",
        "x" * (MAX_KEY_BYTES + 1),
    ],
)
def test_unsafe_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


@given(st.lists(_SEGMENTS, min_size=1, max_size=6))
def test_any_join_of_safe_segments_is_a_key(segments: list[str]) -> None:
    key = "/".join(segments)
    assert validate_key(key) == key


@given(st.text(max_size=40))
def test_a_valid_key_never_climbs_or_roots(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKey:
        return
    parts = key.split("/")
    assert not key.startswith("/")
    assert ".." not in parts
    assert "" not in parts
    assert "\\" not in key


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [("", True), ("a/", True), ("a/b", True), ("a//", False), ("/a", False), ("../", False)],
)
def test_prefixes(prefix: str, ok: bool) -> None:
    if ok:
        assert validate_prefix(prefix) == prefix
    else:
        with pytest.raises(InvalidKey):
            validate_prefix(prefix)


@pytest.mark.parametrize(
    ("prefix", "parent"), [("", ""), ("a", ""), ("a/", "a"), ("a/b", "a"), ("a/b/c", "a/b")]
)
def test_prefix_parent_is_the_enclosing_directory(prefix: str, parent: str) -> None:
    assert prefix_parent(prefix) == parent


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (5, 4)])
def test_bad_ranges_are_rejected(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="start"):
        check_range(start, end)
