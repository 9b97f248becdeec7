"""Keyed locks serialise holders of one key, not of different keys, and clean up after."""

from __future__ import annotations

import asyncio

from hvc.common.locks import KeyedLocks


async def test_one_key_is_held_by_one_task_at_a_time():
    locks = KeyedLocks()
    inside, most = 0, 0

    async def work():
        nonlocal inside, most
        async with locks.hold("c1"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(50)))
    assert most == 1
    assert len(locks) == 0


async def test_different_keys_run_together_and_overlapping_sets_do_not_deadlock():
    locks = KeyedLocks()
    both = asyncio.Event()
    seen = 0

    async def one(key):
        nonlocal seen
        async with locks.hold(key):
            seen += 1
            if seen == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 1)

    await asyncio.gather(one("a"), one("b"))

    async def many(keys):
        async with locks.hold(*keys):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(
        asyncio.gather(*(many(k) for k in (["a", "b"], ["b", "a"], ["b", "c", "a"]) * 10)), 5
    )
    assert len(locks) == 0
