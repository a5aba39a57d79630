"""The byte-bounded LRU against a plain model of it, and the per-key lock map."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsgate.core.model import Series
from tsgate.keylocks import KeyLocks
from tsgate.lru import LRU
from tsgate.series.memory import series_bytes

pytestmark = pytest.mark.anyio

MAX = 40

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 9), st.integers(0, 25)),
        st.tuples(st.just("get"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("peek"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("pop"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("drop_odd"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@given(ops)
def test_the_lru_is_a_list_in_order_of_use_cut_at_its_bound(
    steps: list[tuple[str, int, int]],
) -> None:
    lru: LRU[int, bytes] = LRU(MAX, len)
    model: list[tuple[int, bytes]] = []  # least recently used first
    for op, key, size in steps:
        held = dict(model)
        if op == "put":
            value = bytes(size)
            assert lru.put(key, value) == (size <= MAX // 4)
            if size <= MAX // 4:
                model = [(k, v) for k, v in model if k != key] + [(key, value)]
                while sum(len(v) for _, v in model) > MAX:
                    model.pop(0)
        elif op == "get":
            assert lru.get(key) == held.get(key)
            if key in held:
                model = [(k, v) for k, v in model if k != key] + [(key, held[key])]
        elif op == "peek":
            assert lru.peek(key) == held.get(key)
        elif op == "pop":
            assert lru.pop(key) == held.get(key)
            model = [(k, v) for k, v in model if k != key]
        else:
            assert lru.drop_where(lambda k: k % 2 == 1) == sum(k % 2 for k, _ in model)
            model = [(k, v) for k, v in model if k % 2 == 0]
        assert lru.bytes == sum(len(v) for _, v in model) <= MAX
        assert len(lru) == len(model)
        assert lru.values() == [v for _, v in model]


def test_a_value_over_the_largest_leaves_the_old_one() -> None:
    lru: LRU[str, bytes] = LRU(100, len, largest=10)
    assert lru.put("a", b"12345")
    assert not lru.put("a", bytes(11))
    assert lru.get("a") == b"12345" and lru.bytes == 5
    lru.clear()
    assert len(lru) == 0 and lru.bytes == 0 and lru.get("a") is None


async def test_one_holder_per_key_and_the_map_empties() -> None:
    locks: KeyLocks[str] = KeyLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def worker(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0)
            inside[key] -= 1

    await asyncio.gather(*(worker(k) for k in "ababab"))
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_many_keys_in_one_order_do_not_deadlock() -> None:
    locks: KeyLocks[int] = KeyLocks()
    done = 0

    async def worker(keys: list[int]) -> None:
        nonlocal done
        async with locks.hold_all(sorted(keys)):
            await asyncio.sleep(0)
            done += 1

    await asyncio.wait_for(
        asyncio.gather(*(worker(k) for k in ([1, 2, 3], [3, 2], [2, 1], [1, 1, 3]))), 30
    )
    assert done == 4 and len(locks) == 0


async def test_a_wait_that_runs_out_holds_nothing() -> None:
    locks: KeyLocks[str] = KeyLocks()
    async with locks.hold("b"):
        with pytest.raises(TimeoutError):
            async with locks.hold_all(["a", "b"], wait_s=0.01):
                pytest.fail("held while another holds b")
        # "a" was let go when the wait ran out: another caller takes it at once
        async with locks.hold("a", wait_s=30):
            pass
    assert len(locks) == 0


async def test_an_error_inside_releases_the_lock() -> None:
    locks: KeyLocks[str] = KeyLocks()
    with pytest.raises(ValueError, match="boom"):
        async with locks.hold("a"):
            raise ValueError("boom")
    async with locks.hold("a", wait_s=30):
        pass
    assert len(locks) == 0


def test_a_counted_lru_keeps_the_most_recent_entries_whatever_their_size() -> None:
    lru: LRU[int, bytes] = LRU.counted(3)
    for key in range(3):
        assert lru.put(key, bytes(1000))
    assert lru.get(0) is not None  # 0 is now the most recently used
    lru.put(3, b"")
    assert sorted(k for k in range(4) if lru.peek(k) is not None) == [0, 2, 3]
    assert len(lru) == 3


def test_decoded_series_are_measured_with_their_microseconds() -> None:
    # 100 samples: 1,600 bytes of times and values, 200 more of sub-millisecond parts
    t = np.arange(100, dtype=np.int64)
    plain = Series("p", t, t.astype(np.float64))
    micro = Series("p", t, t.astype(np.float64), np.full(100, 7, dtype=np.uint16))
    assert series_bytes(plain) == 1600
    assert series_bytes(micro) == 1800
    kept: LRU[str, Series] = LRU(3500, series_bytes, largest=3500)
    kept.put("a", micro)
    kept.put("b", micro)  # 3,600 bytes: more than the bound, so "a" goes
    assert kept.get("a") is None and kept.get("b") is micro
