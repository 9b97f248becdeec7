"""The tiering HTTP side against the real store and broker: explanation, override, history,
dry run, reports, and RFC 9457 problems for bad requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from hvc.common import problems
from hvc.common.kafka import producer
from hvc.common.settings import KafkaSettings
from hvc.tiering.api.routes import make_router
from hvc.tiering.decisions import Decider, run_annual
from hvc.tiering.domain.model import Bill, PlanVersion, Profile
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.repository import Repository

pytestmark = pytest.mark.integration
UTC = dt.UTC
T = dt.datetime(2025, 1, 5, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def api(infra):
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    name = f"it_api_{uuid.uuid4().hex[:8]}"
    repo = Repository(client[name])
    await repo.ensure_indexes()
    async with producer(KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)) as send:
        decider = Decider(repo, load_rulebook([DEFAULT_RULESETS]), send, clock=lambda: NOW)
        app = FastAPI()
        problems.install(app)
        app.include_router(make_router(decider))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http, decider
    await client.drop_database(name)
    await client.close()


async def seed(
    decider: Decider,
    cid: str,
    *,
    fee: int,
    spend_fen: int,
    plan_end=None,
    joined=dt.date(2015, 1, 1),
):
    repo = decider.repo
    await repo.add_profile(cid, Profile(f"u-{cid}", T, joined, None, False))
    start = dt.datetime(2025, 3, 1, tzinfo=UTC)
    await repo.add_plan(cid, PlanVersion(f"p-{cid}", "P", fee, True, start, plan_end, T))
    await repo.put_bill(cid, Bill(f"b-{cid}", "2025-06", spend_fen + 100, spend_fen, T))
    await decider.settle(cid)


async def test_explanation_gives_points_thresholds_source_and_points_missing(api):
    http, decider = api
    await seed(decider, "gold", fee=28_800, spend_fen=369_900)
    await run_annual(decider, 2025, dt.date(2026, 1, 15))
    r = await http.get("/v1/customers/gold/tier")
    assert r.status_code == 200
    body = r.json()
    assert (body["effective_tier"], body["source"]) == ("PLATINUM", "ANNUAL")
    a = body["annual"]
    assert (a["consumption_points"], a["tenure_points"], a["score"]) == (3699, 300, 3999)
    assert a["thresholds"]["DIAMOND"] == 4000
    assert (a["next_tier"], a["points_to_next_tier"]) == ("DIAMOND", 1)
    assert {c["source"] for c in body["components"]} == {"ANNUAL", "PLAN"}


async def test_why_am_i_no_longer_gotone(api):
    http, decider = api
    ended = dt.datetime(2025, 9, 1, tzinfo=UTC)
    await seed(decider, "gone", fee=18_800, spend_fen=0, plan_end=ended, joined=dt.date(2024, 6, 1))
    await run_annual(decider, 2025, dt.date(2026, 1, 15))
    body = (await http.get("/v1/customers/gone/tier")).json()
    assert body["effective_tier"] == "NONE" and body["source"] is None
    reasons = " | ".join(body["reasons"])
    assert "score 100 is below the VIP threshold 200 (100 points short)" in reasons
    assert "GoTone plan P ended" in reasons
    # While the plan was on, it held SILVER.
    during = await http.get("/v1/customers/gone/tier", params={"at": "2025-06-01T00:00:00Z"})
    assert during.json()["effective_tier"] == "SILVER"
    history = (await http.get("/v1/customers/gone/tier/history")).json()
    assert [(i["old_tier"], i["new_tier"]) for i in history["items"]] == [
        ("SILVER", "NONE"),
        ("NONE", "SILVER"),
    ]
    assert history["total"] == 2


async def test_override_is_a_floor_with_reason_and_expiry_and_replays_idempotently(api):
    http, decider = api
    await seed(decider, "o1", fee=18_800, spend_fen=0)
    body = {
        "tier": "GOLD",
        "reason": "network outage goodwill",
        "set_by": "sup-7",
        "expires_at": "2026-06-01T00:00:00Z",
    }
    headers = {"Idempotency-Key": "k-1"}
    r = await http.put("/v1/customers/o1/tier/override", json=body, headers=headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["created"] is True and len(first["decisions"]) == 2  # up now, down at expiry
    assert (first["explanation"]["effective_tier"], first["explanation"]["source"]) == (
        "GOLD",
        "MANUAL",
    )
    again = (await http.put("/v1/customers/o1/tier/override", json=body, headers=headers)).json()
    assert again["override_id"] == first["override_id"]
    assert again["created"] is False and again["decisions"] == []
    log = await decider.repo.override_log.find_one({"_id": first["override_id"]})
    assert (log["by"], log["reason"], log["tier"]) == ("sup-7", "network outage goodwill", "GOLD")

    # A first request cut short: the store took its audit entry and went away before it
    # answered, so the override never reached the customer. The client's retry completes
    # it with the logged override (its reason, not the retry's).
    await seed(decider, "o2", fee=18_800, spend_fen=0)
    h2 = {"Idempotency-Key": "k-2"}
    logged = {**log, "_id": "ovr-" + hashlib.sha256(b"o2|k-2").hexdigest()[:24]}
    await decider.repo.override_log.insert_one({**logged, "customer_id": "o2"})
    retry = await http.put(
        "/v1/customers/o2/tier/override", json={**body, "reason": "retry"}, headers=h2
    )
    done = retry.json()
    assert done["override_id"] == logged["_id"]
    assert done["created"] is True and len(done["decisions"]) == 2
    assert done["explanation"]["effective_tier"] == "GOLD"
    facts = await decider.repo.facts("o2")
    assert [o.reason for o in facts.overrides] == ["network outage goodwill"]


async def test_bad_requests_are_problem_documents(api):
    http, decider = api
    await seed(decider, "p1", fee=18_800, spend_fen=0)
    r = await http.put(
        "/v1/customers/p1/tier/override",
        json={"tier": "GOLD", "reason": "x", "set_by": "s", "expires_at": "2026-06-01T00:00:00Z"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["loc"][-1] == "reason"
    past = {"tier": "GOLD", "reason": "abc", "set_by": "s", "expires_at": "2026-01-01T00:00:00Z"}
    r = await http.put("/v1/customers/p1/tier/override", json=past)
    assert (r.status_code, r.json()["title"]) == (422, "Override already expired")
    r = await http.get("/v1/customers/nobody/tier")
    assert (r.status_code, r.json()["status"]) == (404, 404)
    r = await http.get("/v1/reports/nope")
    assert r.status_code == 404 and "tiers" in r.json()["detail"]
    r = await http.put("/v1/customers/p1/tier/override", json={**past, "tier": "EMERALD"})
    assert r.status_code == 422


async def test_dry_run_counts_moves_and_emits_nothing(api):
    http, decider = api
    await seed(decider, "s1", fee=0, spend_fen=369_900)  # 3999 points
    await seed(decider, "s2", fee=0, spend_fen=10_000)  # 400 points
    await run_annual(decider, 2025, dt.date(2026, 1, 15))
    before = await decider.repo.history.count_documents({})
    candidate = load_rulebook([DEFAULT_RULESETS]).rulesets[0].model_dump(mode="json")
    candidate |= {
        "version": "2026.trial",
        "effective_from": "2026-01-01",
        "thresholds": {"DIAMOND": 3999, "PLATINUM": 2000, "GOLD": 1000, "SILVER": 400, "VIP": 200},
    }
    r = await http.post("/v1/tiering/simulations", json={"ruleset": candidate, "year": 2025})
    assert r.status_code == 200, r.text
    sim = r.json()
    assert sim["matrix"]["PLATINUM"]["DIAMOND"] == 1
    assert sim["matrix"]["VIP"]["SILVER"] == 1
    assert (sim["upgraded"], sim["downgraded"]) == (2, 0)
    assert await decider.repo.history.count_documents({}) == before
    bad = candidate | {
        "thresholds": {"DIAMOND": 1, "PLATINUM": 2000, "GOLD": 1000, "SILVER": 400, "VIP": 200}
    }
    r = await http.post("/v1/tiering/simulations", json={"ruleset": bad, "year": 2025})
    assert r.status_code == 422 and "descending" in r.text


async def test_reports(api):
    http, decider = api
    await seed(decider, "r1", fee=58_800, spend_fen=30_000)
    tiers = (await http.get("/v1/reports/tiers")).json()
    assert tiers["counts"]["DIAMOND"] == 1 and tiers["total"] == 1
    arpu = (await http.get("/v1/reports/arpu-bands", params={"period": "2025-06"})).json()
    assert arpu["counts"] == {"200-500": 1}
    groups = (await http.get("/v1/reports/group-classes")).json()
    assert groups["intended_shares"] == {"A": 0.05, "B": 0.25, "C": 0.7}
