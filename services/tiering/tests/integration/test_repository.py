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
        facts = (await repo.load(cid)).facts
        assert (len(facts.profiles), len(facts.plans), len(facts.bills)) == (1, 1, 3)


async def test_redelivered_facts_change_nothing(repo):
    p = Profile("u1", T, dt.date(2015, 1, 1), "G1", True)
    assert await repo.add_profile("c", p) is True
    assert await repo.add_profile("c", p) is False
    assert await repo.add_plan("c", PlanVersion("p.1", "P", 1, True, T, None, T)) is True
    assert await repo.add_plan("c", PlanVersion("p.1", "P", 1, True, T, None, T)) is False
    facts = (await repo.load("c")).facts
    assert (len(facts.profiles), len(facts.plans)) == (1, 1)
    assert await repo.key_people_of("G1") == ["c"]
    doc = await repo.customers.find_one({"_id": "c"})
    assert field_key("p.1") in doc["plans"] and "p.1" not in doc["plans"]


async def test_a_reissued_bill_replaces_only_an_older_one(repo):
    older = Bill("B1", "2025-01", 100, 90, T)
    newer = Bill("B1", "2025-01", 200, 150, T + dt.timedelta(days=3))
    assert await repo.put_bill("c", newer) is True
    assert await repo.put_bill("c", older) is False  # late arrival of the superseded bill
    facts = (await repo.load("c")).facts
    assert facts.bills["B1"].countable_fen == 150
    assert await repo.put_bill("c", newer) is False


async def test_customer_doc_round_trips_through_the_store(repo):
    from hvc.tiering.domain.model import CustomerFacts, Payment
    from hvc.tiering.repository import customer_doc, from_docs

    f = CustomerFacts(
        "c.1",
        profiles=[Profile("u.1", T, dt.date(2015, 1, 1), "G", True)],
        bills={"B.1": Bill("B.1", "2025-01", 100, 90, T)},
        payments=[Payment("pay-1", T, 100)],
        plans=[PlanVersion("p.1", "P", 18_800, True, T, None, T)],
    )
    await repo.customers.insert_one(customer_doc(f))
    state = await repo.load("c.1")
    assert state.facts == f and state.emitted == {} and state.unpublished == []
    assert from_docs(customer_doc(f))[0] == f


async def test_claims_are_exclusive_and_scan_merges_each_customers_documents(repo):
    from hvc.tiering.domain.model import CustomerFacts
    from hvc.tiering.repository import customer_doc

    for cid in ("C1", "C10", "C2"):
        await repo.customers.insert_one(customer_doc(CustomerFacts(cid)))
    h = {"customer_id": "C1", "seq": 1, "new_tier": "GOLD", "event_id": "e1"}
    first = await repo.claim([{"_id": "C1 100 1", **h}, {"_id": "C10 100 1", **h}])
    again = await repo.claim([{"_id": "C1 100 1", **h}, {"_id": "C1 200 1", **h}])
    assert first == {"C1 100 1", "C10 100 1"} and again == {"C1 200 1"}
    seen = {doc["_id"]: [x["_id"] for x in hist] async for doc, _, hist in repo.scan()}
    assert seen == {"C1": ["C1 100 1", "C1 200 1"], "C10": ["C10 100 1"], "C2": []}


async def test_annual_results_in_force_are_read_by_id_and_a_cut_off_run_is_completed(repo):
    from hvc.tiering.domain.model import AnnualResult
    from hvc.tiering.domain.tiers import Tier
    from hvc.tiering.repository import annual_doc

    await repo.add_profile("c1", Profile("u1", T, dt.date(2015, 1, 1), None, False))
    valid = dt.datetime(2026, 1, 31, 16, tzinfo=dt.UTC)
    r24 = AnnualResult(2024, dt.date(2025, 1, 1), "2025.1", 3000, 300, 9, 3300, Tier.GOLD, valid)
    r25 = AnnualResult(
        2025, dt.date(2026, 1, 1), "2025.1", 3700, 300, 10, 4000, Tier.DIAMOND, valid
    )
    again = AnnualResult(2025, dt.date(2026, 1, 1), "2025.1", 3000, 300, 10, 3300, Tier.GOLD, valid)
    await repo.put_annual([annual_doc("c1", r24, T), annual_doc("c1", r25, T)])
    await repo.put_annual([annual_doc("c1", again, T + dt.timedelta(hours=1))])  # a re-run
    facts = await repo.facts("c1")
    assert {y: a.tier for y, a in facts.annual.items()} == {"2024": Tier.GOLD, "2025": Tier.GOLD}
    assert (await repo.load("c1")).facts.annual == facts.annual
    assert await repo.annual.count_documents({}) == 3  # the insert-only record keeps all three
    assert await repo.facts("nobody") is None

    # A run cut off after the insert-only record, before the results in force: the next run
    # finds the result missing in force and writes it again (the record stays one document).
    await repo.in_force.delete_one({"_id": "c1"})
    assert (await repo.facts("c1")).annual == {}
    [(_, annual, _)] = [row async for row in repo.scan()]
    assert annual == []
    assert await repo.put_annual([annual_doc("c1", again, T + dt.timedelta(hours=1))]) == set()
    assert (await repo.facts("c1")).annual["2025"].tier is Tier.GOLD
    assert await repo.annual.count_documents({}) == 3
