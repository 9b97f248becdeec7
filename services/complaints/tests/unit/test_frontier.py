"""The filing wait without a broker: a filing is released once tiering is through its
publication time and the decisions then published are handled here; the wait is bounded,
counted from when the filing was published, so a backlog of old filings (tiering down a long
time) is filed at once."""

from __future__ import annotations

import asyncio
import time

from hvc.common.settings import KafkaSettings
from hvc.complaints.frontier import WAITED_OUT, TieringFrontier


class Broker(TieringFrontier):
    """Tiering through `through_at` (ms) and the decisions' ends as the test sets them."""

    through_at = 0
    ends = {0: 5, 1: 0}
    committed = {0: -1, 1: -1}
    looks = 0

    async def _tiering_through(self, ts_ms: int) -> bool:
        self.looks += 1
        return ts_ms <= self.through_at

    async def _decisions(self) -> tuple[dict[int, int], dict[int, int]]:
        return dict(self.ends), dict(self.committed)


def frontier(wait_s: float = 30.0) -> Broker:
    return Broker(
        KafkaSettings(),
        tiering_group="tiering",
        tiering_inputs=["crm.customers.v1"],
        decisions_topic="hvc.tier-decisions.v1",
        own_group="complaints-stream",
        wait_s=wait_s,
    )


def test_a_filing_is_released_once_tiering_is_through_it_and_its_decisions_are_handled():
    f = frontier()
    now = int(time.time() * 1000)
    assert f.released(0, now) is False
    asyncio.run(f.step())  # tiering behind: nothing moves
    assert f.released(0, now) is False and f.through_ms == 0
    f.through_at = now
    asyncio.run(f.step())
    assert f.through_ms == now
    assert f.released(1, now) is True  # nothing was published on partition 1
    assert f.released(0, now) is False  # partition 0's decisions up to offset 4 are not here
    f.decided(0, 3)
    assert f.released(0, now) is False
    f.decided(0, 4)
    assert f.released(0, now) is True and f.released(0, now - 1000) is True


def test_a_later_look_does_not_hold_a_filing_an_earlier_one_released():
    f = frontier()
    now = int(time.time() * 1000)
    f.released(0, now - 10)
    f.through_at = now
    asyncio.run(f.step())
    f.decided(0, 4)
    f.ends = {0: 50, 1: 0}  # decisions keep coming: the pipeline is a little behind
    f.released(0, now + 10)
    f.through_at = now + 10
    asyncio.run(f.step())
    assert f.released(0, now - 10) is True  # the first look's ends are handled
    assert f.released(0, now + 10) is False


def test_where_the_group_stands_counts_as_handled_after_a_restart():
    f = frontier()
    now = int(time.time() * 1000)
    f.committed = {0: 5, 1: -1}
    f.released(0, now)
    f.through_at = now
    asyncio.run(f.step())
    assert f.released(0, now) is True


def test_a_filing_published_longer_ago_than_the_wait_is_filed_at_once_and_counted():
    f = frontier(wait_s=0.5)
    before = WAITED_OUT._value.get()
    assert f.released(0, int((time.time() - 10) * 1000)) is True
    assert WAITED_OUT._value.get() == before + 1
    assert f.released(0, int(time.time() * 1000)) is False  # a recent one waits


def test_no_wait_when_off():
    f = frontier(wait_s=0)
    assert f.released(0, int(time.time() * 1000)) is True
    asyncio.run(f.step())
    assert f.looks == 0


def test_the_tier_at_a_filing_counts_only_the_decisions_caused_before_it_was_published():
    import datetime as dt

    from hvc.complaints.repository import Tier, later, tier_at

    day = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    tiers = [
        Tier("GOLD", day, 100),
        Tier("DIAMOND", day + dt.timedelta(days=1), 300),  # in force, but caused after
        Tier("SILVER", day + dt.timedelta(days=9), 150),  # known, effective after
    ]
    filed = day + dt.timedelta(days=5)
    assert tier_at(tiers, filed, known_by=200) == "GOLD"
    assert tier_at(tiers, filed, known_by=300) == "DIAMOND"
    assert tier_at(tiers, day - dt.timedelta(seconds=1), known_by=10**9) == "NONE"
    # What comes after the filing, in the order it was known.
    assert [t.tier for t in later(tiers, filed, known_by=200)] == ["SILVER", "DIAMOND"]
