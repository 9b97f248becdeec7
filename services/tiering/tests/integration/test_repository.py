"""The repository against the real store: what the HTTP side and the annual run read of the
pipeline's views, and write themselves (override log, annual results)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pymongo import AsyncMongoClient

from hvc.tiering.domain.model import Bill, PlanVersion, Profile
from hvc.tiering.repository import Repository

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


async def test_an_override_is_logged_once_and_a_repeat_gets_the_logged_one(repo):
    from hvc.tiering.domain.model import Override
    from hvc.tiering.domain.tiers import Tier

    o = Override("ovr-1", Tier.GOLD, T, T + dt.timedelta(days=30), "vip", "sup")
    assert await repo.log_override("c", o) == (True, o)
    later = Override("ovr-1", Tier.GOLD, T + dt.timedelta(hours=1), o.expires_at, "vip", "sup")
    assert await repo.log_override("c", later) == (False, o)  # the first, not this one
    assert await repo.log_override("other", o) == (False, None)  # the key, reused elsewhere
    assert await repo.override_log.count_documents({}) == 1


async def test_customer_doc_round_trips_through_the_store(repo):
    from hvc.tiering.domain.model import CustomerFacts, Payment
    from hvc.tiering.repository import customer_doc, facts_doc, from_docs, ledger_docs

    f = CustomerFacts(
        "c.1",
        profiles=[Profile("u.1", T, dt.date(2015, 1, 1), "G", True)],
        bills={"B.1": Bill("B.1", "2025-01", 100, 90, T)},
        payments=[Payment("pay-1", T, 100)],
        plans=[PlanVersion("p.1", "P", 18_800, True, T, None, T)],
    )
    await repo.customers.insert_one(customer_doc(f))
    await repo.ledger.insert_many(ledger_docs(f))
    assert await repo.facts("c.1") == f
    assert from_docs(facts_doc(f))[0] == f
    # another customer's ledger, on either side of it in `_id` order, is not read
    await repo.ledger.insert_many(
        ledger_docs(CustomerFacts("c.", payments=[Payment("x", T, 1)]))
        + ledger_docs(CustomerFacts("c.10", payments=[Payment("y", T, 2)]))
    )
    assert await repo.facts("c.1") == f
    [(doc, _, _)] = [row async for row in repo.scan() if row[0]["_id"] == "c.1"]
    assert from_docs(doc)[0] == f


async def test_scan_merges_each_customers_documents(repo):
    from hvc.tiering.domain.model import CustomerFacts
    from hvc.tiering.repository import customer_doc

    for cid in ("C1", "C10", "C2"):
        await repo.customers.insert_one(customer_doc(CustomerFacts(cid)))
    h = {"customer_id": "C1", "seq": 1, "new_tier": "GOLD", "event_id": "e1"}
    await repo.history.insert_many([{"_id": i, **h} for i in ("C1 100 1", "C10 100 1", "C1 200 1")])
    pay = {"at": T, "amount_fen": 5}
    # ledger documents of C0 (no customers document: skipped), C10 and C2
    await repo.ledger.insert_many([{"_id": i, **pay} for i in ("C0 p a", "C10 p a", "C2 p a")])
    seen = {
        doc["_id"]: ([x["_id"] for x in hist], sorted(doc["payments"]))
        async for doc, _, hist in repo.scan()
    }
    assert seen == {
        "C1": (["C1 100 1", "C1 200 1"], []),
        "C10": (["C10 100 1"], ["a"]),
        "C2": ([], ["a"]),
    }


async def test_annual_results_in_force_are_read_by_id_and_a_cut_off_run_is_completed(repo):
    from hvc.tiering.domain.model import AnnualResult, CustomerFacts
    from hvc.tiering.domain.tiers import Tier
    from hvc.tiering.repository import annual_doc, customer_doc

    f = CustomerFacts("c1", profiles=[Profile("u1", T, dt.date(2015, 1, 1), None, False)])
    await repo.customers.insert_one(customer_doc(f))
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
