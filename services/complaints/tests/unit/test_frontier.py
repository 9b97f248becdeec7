"""The filing wait's bound, without a broker: counted from when the filing was published, so a
backlog of old filings (tiering down a long time) is looked at once each, not held each."""

from __future__ import annotations

import asyncio
import time

from hvc.common.settings import KafkaSettings
from hvc.complaints.frontier import WAITED_OUT, TieringFrontier


class Behind(TieringFrontier):
    """Tiering never gets there; counts the looks."""

    looks = 0

    async def _tiering_through(self, ts_ms: int) -> bool:
        self.looks += 1
        return False

    async def _decisions_handled(self) -> bool:
        return True


class There(Behind):
    async def _tiering_through(self, ts_ms: int) -> bool:
        self.looks += 1
        return True


def frontier(cls: type[Behind], wait_s: float) -> Behind:
    return cls(
        KafkaSettings(),
        tiering_group="tiering",
        tiering_inputs=["crm.customers.v1"],
        decisions_topic="hvc.tier-decisions.v1",
        own_group="complaints",
        handled={},
        wait_s=wait_s,
        poll_s=0.05,
    )


def test_a_filing_published_longer_ago_than_the_wait_is_looked_at_once_and_waited_out():
    f = frontier(Behind, wait_s=0.5)
    before = WAITED_OUT._value.get()
    assert asyncio.run(f.wait_through(int((time.time() - 10) * 1000))) is False
    assert f.looks == 1 and WAITED_OUT._value.get() == before + 1


def test_a_recent_filing_is_held_while_tiering_is_behind_then_waited_out():
    f = frontier(Behind, wait_s=0.5)
    assert asyncio.run(f.wait_through(int(time.time() * 1000))) is False
    assert f.looks >= 3


def test_once_tiering_is_through_a_time_earlier_filings_do_not_look_again():
    f = frontier(There, wait_s=30)
    now_ms = int(time.time() * 1000)
    assert asyncio.run(f.wait_through(now_ms)) is True
    assert asyncio.run(f.wait_through(now_ms - 1000)) is True
    assert f.looks == 1


def test_no_wait_when_off():
    f = frontier(Behind, wait_s=0)
    assert asyncio.run(f.wait_through(int(time.time() * 1000))) is False
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
