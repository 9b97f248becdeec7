"""The repository against the real store: concurrent first facts all land, redeliveries do not,
and a re-issued bill replaces an older one only."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from pymongo import AsyncMongoClient

from hvc.tiering.domain.model import Bill, PlanVersion, Profile
from hvc.tiering.repository import Repository, field_key

pytestmark = pytest.mark.integration
T = dt.datetime(2025, 1, 5, tzinfo=dt.UTC)


@pytest.fixture
async def repo(infra):
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    name = f"it_repo_{uuid.uuid4().hex[:8]}"
    r = Repository(client[name])
    await r.ensure_indexes()
    yield r
    await client.drop_database(name)
    await client.close()


async def test_racing_first_facts_of_a_new_customer_are_all_kept(repo):
    for i in range(20):
        cid = f"c{i}"
        added = await asyncio.gather(
            repo.add_profile(cid, Profile(f"u{i}", T, dt.date(2015, 1, 1), None, False)),
            repo.add_plan(cid, PlanVersion(f"p{i}", "P", 18_800, True, T, None, T)),
            *(repo.put_bill(cid, Bill(f"b{i}-{m}", f"2025-0{m}", 100, 90, T)) for m in (1, 2, 3)),
        )
        assert added == [True] * 5
        facts, _, rev = await repo.load(cid)
        assert (len(facts.profiles), len(facts.plans), len(facts.bills)) == (1, 1, 3)
        assert rev == 2  # profile and plan move the timeline; bills do not


async def test_redelivered_facts_change_nothing(repo):
    p = Profile("u1", T, dt.date(2015, 1, 1), "G1", True)
    assert await repo.add_profile("c", p) is True
    assert await repo.add_profile("c", p) is False
    assert await repo.add_plan("c", PlanVersion("p.1", "P", 1, True, T, None, T)) is True
    assert await repo.add_plan("c", PlanVersion("p.1", "P", 1, True, T, None, T)) is False
    _, _, rev = await repo.load("c")
    assert rev == 2
    assert await repo.key_people_of("G1") == ["c"]
    doc = await repo.customers.find_one({"_id": "c"})
    assert field_key("p.1") in doc["plans"] and "p.1" not in doc["plans"]


async def test_a_reissued_bill_replaces_only_an_older_one(repo):
    older = Bill("B1", "2025-01", 100, 90, T)
    newer = Bill("B1", "2025-01", 200, 150, T + dt.timedelta(days=3))
    assert await repo.put_bill("c", newer) is True
    assert await repo.put_bill("c", older) is False  # late arrival of the superseded bill
    facts, _, _ = await repo.load("c")
    assert facts.bills["B1"].countable_fen == 150
    assert await repo.put_bill("c", newer) is False
