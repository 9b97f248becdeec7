"""Reports through the gateway: one fetch shared by concurrent callers and for the cache's
lifetime; at most `concurrency` different reports fetched at once (issue 20, item 5)."""

from __future__ import annotations

import asyncio

from hvc.gateway.reports import ReportCache


def test_concurrent_callers_share_one_fetch_and_its_answer_is_kept_for_the_ttl():
    now = [0.0]
    cache = ReportCache(ttl_s=60, concurrency=2, clock=lambda: now[0])
    calls = []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"n": len(calls)}

    async def run():
        first = await asyncio.gather(*(cache.get("sla", {}, fetch) for _ in range(10)))
        again = await cache.get("sla", {}, fetch)
        other = await cache.get("sla", {"year": "2025"}, fetch)
        now[0] = 61
        later = await cache.get("sla", {}, fetch)
        return first, again, other, later

    first, again, other, later = asyncio.run(run())
    assert first == [{"n": 1}] * 10 and again == {"n": 1}
    assert other == {"n": 2} and later == {"n": 3}
    assert cache.fetches == 3


def test_at_most_concurrency_reports_are_fetched_at_once_and_a_failure_is_not_kept():
    cache = ReportCache(ttl_s=60, concurrency=2)
    running, peak = 0, 0

    async def fetch():
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return {}

    async def failing():
        raise RuntimeError("upstream down")

    async def run():
        await asyncio.gather(*(cache.get(f"r{i}", {}, fetch) for i in range(6)))
        try:
            await cache.get("bad", {}, failing)
        except RuntimeError:
            pass
        return await cache.get("bad", {}, fetch)

    assert asyncio.run(run()) == {}
    assert peak == 2
