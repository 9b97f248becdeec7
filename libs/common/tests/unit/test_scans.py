"""The scan bound: at most N at once, the next waits its turn, past the wait a 503."""

from __future__ import annotations

import asyncio

import pytest

from hvc.common.problems import Problem
from hvc.common.scans import Scans


async def test_no_more_scans_run_at_once_than_the_bound():
    scans = Scans(concurrency=2, queue_s=5.0)
    running, peak = 0, 0

    async def scan() -> None:
        nonlocal running, peak
        async with scans.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1

    await asyncio.gather(*(scan() for _ in range(10)))
    assert peak == 2
    assert running == 0


async def test_a_request_that_gets_no_slot_in_time_is_answered_503_with_retry_after():
    scans = Scans(concurrency=1, queue_s=0.05)
    release = asyncio.Event()

    async def holder() -> None:
        async with scans.slot():
            await release.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(Problem) as refused:
        async with scans.slot():
            pass
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "1"
    release.set()
    await task
    async with scans.slot():  # the slot came back
        pass


async def test_a_failed_scan_gives_its_slot_back():
    scans = Scans(concurrency=1, queue_s=0.05)
    with pytest.raises(ZeroDivisionError):
        async with scans.slot():
            raise ZeroDivisionError
    async with scans.slot():
        pass
