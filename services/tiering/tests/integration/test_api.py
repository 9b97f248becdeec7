"""The tiering HTTP side against the real store and broker: explanation, override, history,
dry run, reports, and RFC 9457 problems for bad requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2
from hvc.tiering.bootstrap import bootstrap
from hvc.tiering.decisions import Commands, run_annual
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.pipeline import INPUTS

pytestmark = pytest.mark.integration
UTC = dt.UTC
T = dt.datetime(2025, 1, 5, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 1, tzinfo=UTC)


class Api:
    """The tiering service running (its pipeline and its HTTP side) on a store of its own;
    facts go in as events on its input topics."""

    def __init__(self, http: httpx.AsyncClient, commands: Commands, producer, tag: str):
        self.http, self.commands, self.producer, self.tag = http, commands, producer, tag

    @property
    def repo(self):
        return self.commands.repo

    async def send(self, topic: str, cid: str, m) -> None:
        await self.producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())

    async def settled(self, cid: str, *, bills: int = 0, overrides: int = 0) -> None:
        """Until the views hold the customer's facts and every decision they make."""
        for _ in range(300):
            facts = await self.repo.facts(cid)
            if (
                facts is not None
                and len(facts.bills) >= bills
                and len(facts.overrides) >= overrides
            ):
                if not await self.commands.expected(cid, facts):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{cid}: the views never caught up")


@pytest.fixture
async def api(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    name, db = f"tiering-api-{tag}", f"it_api_{tag}"
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    runtime, app = bootstrap(
        name=name,
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
    )
    commands: Commands = app.state.commands
    commands.clock = lambda: NOW
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield Api(http, commands, producer, tag)
    finally:
        await runtime.stop()
        await producer.stop()
        client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
        await client.drop_database(db)
        await client.close()


async def seed(
    api: Api,
    cid: str,
    *,
    fee: int,
    spend_fen: int,
    plan_end=None,
    joined=dt.date(2015, 1, 1),
):
    """A profile, a GoTone plan from 2025-03-01 and a June bill, through the topics."""
    u = customers_pb2.CustomerEvent(event_id=f"u-{cid}", customer_id=cid)
    u.occurred_at.FromDatetime(T)
    u.customer_upserted.name = "n"
    u.customer_upserted.joined_on.CopyFrom(
        common_pb2.Date(year=joined.year, month=joined.month, day=joined.day)
    )
    p = customers_pb2.CustomerEvent(event_id=f"p-{cid}", customer_id=cid)
    p.occurred_at.FromDatetime(T)
    pc = p.plan_changed
    pc.plan_id, pc.monthly_fee_fen, pc.gotone = "P", fee, True
    pc.effective_from.FromDatetime(dt.datetime(2025, 3, 1, tzinfo=UTC))
    if plan_end is not None:
        pc.effective_to.FromDatetime(plan_end)
    b = accounts_pb2.AccountEvent(event_id=f"b-{cid}", customer_id=cid)
    b.occurred_at.FromDatetime(T)
    bi = b.bill_issued
    bi.bill_id, bi.period, bi.amount_fen, bi.countable_fen = (
        f"b-{cid}",
        "2025-06",
        spend_fen + 100,
        spend_fen,
    )
    await api.send("crm.customers.v1", cid, u)
    await api.send("crm.customers.v1", cid, p)
    await api.send("billing.accounts.v1", cid, b)
    await api.settled(cid, bills=1)


async def annual(api: Api, *cids: str) -> None:
    await run_annual(api.commands, 2025, dt.date(2026, 1, 15))
    for cid in cids:
        await api.settled(cid)


async def test_explanation_gives_points_thresholds_source_and_points_missing(api):
    http = api.http
    await seed(api, "gold", fee=28_800, spend_fen=369_900)
    await annual(api, "gold")
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
    http = api.http
    ended = dt.datetime(2025, 9, 1, tzinfo=UTC)
    await seed(api, "gone", fee=18_800, spend_fen=0, plan_end=ended, joined=dt.date(2024, 6, 1))
    await annual(api, "gone")
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
    http = api.http
    await seed(api, "o1", fee=18_800, spend_fen=0)
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
    await api.settled("o1", overrides=1)  # the pipeline has decided
    again = (await http.put("/v1/customers/o1/tier/override", json=body, headers=headers)).json()
    assert again["override_id"] == first["override_id"]
    assert again["created"] is False and again["decisions"] == []
    log = await api.repo.override_log.find_one({"_id": first["override_id"]})
    assert (log["by"], log["reason"], log["tier"]) == ("sup-7", "network outage goodwill", "GOLD")

    # A first request cut short: the store took its audit entry and went away before it
    # answered, so the override was never sent. The client's retry sends the logged override
    # (its reason, not the retry's).
    await seed(api, "o2", fee=18_800, spend_fen=0)
    h2 = {"Idempotency-Key": "k-2"}
    logged = {**log, "_id": "ovr-" + hashlib.sha256(b"o2|k-2").hexdigest()[:24]}
    await api.repo.override_log.insert_one({**logged, "customer_id": "o2"})
    retry = await http.put(
        "/v1/customers/o2/tier/override", json={**body, "reason": "retry"}, headers=h2
    )
    done = retry.json()
    assert done["override_id"] == logged["_id"]
    assert done["created"] is False and len(done["decisions"]) == 2
    assert done["explanation"]["effective_tier"] == "GOLD"
    await api.settled("o2", overrides=1)
    facts = await api.repo.facts("o2")
    assert [o.reason for o in facts.overrides] == ["network outage goodwill"]


async def test_bad_requests_are_problem_documents(api):
    http = api.http
    await seed(api, "p1", fee=18_800, spend_fen=0)
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
    http = api.http
    await seed(api, "s1", fee=0, spend_fen=369_900)  # 3999 points
    await seed(api, "s2", fee=0, spend_fen=10_000)  # 400 points
    await annual(api, "s1", "s2")
    before = await api.repo.history.count_documents({})
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
    assert await api.repo.history.count_documents({}) == before
    bad = candidate | {
        "thresholds": {"DIAMOND": 1, "PLATINUM": 2000, "GOLD": 1000, "SILVER": 400, "VIP": 200}
    }
    r = await http.post("/v1/tiering/simulations", json={"ruleset": bad, "year": 2025})
    assert r.status_code == 422 and "descending" in r.text
    # The rule set in force, as the workbench starts a candidate from it: unchanged, no move.
    current = (await http.get("/v1/tiering/rulesets/current")).json()
    assert current["thresholds"]["DIAMOND"] == 4000
    same = await http.post("/v1/tiering/simulations", json={"ruleset": current, "year": 2025})
    assert same.status_code == 200, same.text
    assert same.json()["moved"] == 0


async def test_reports(api):
    http = api.http
    await seed(api, "r1", fee=58_800, spend_fen=30_000)
    tiers = (await http.get("/v1/reports/tiers")).json()
    assert tiers["counts"]["DIAMOND"] == 1 and tiers["total"] == 1
    arpu = (await http.get("/v1/reports/arpu-bands", params={"period": "2025-06"})).json()
    assert arpu["counts"] == {"200-500": 1}
    groups = (await http.get("/v1/reports/group-classes")).json()
    assert groups["intended_shares"] == {"A": 0.05, "B": 0.25, "C": 0.7}


async def test_a_groups_file_and_the_departments_indicators(api):
    """Through the topics: a group's snapshot and its members' profiles (one a key person, one
    moving out) make its file; the indicators count it."""
    gid = f"G{api.tag}"

    def profile(cid, eid, when, group, key_person=False):
        m = customers_pb2.CustomerEvent(event_id=eid, customer_id=cid)
        m.occurred_at.FromDatetime(when)
        u = m.customer_upserted
        u.name, u.is_key_person, u.manager_id = "n", key_person, "M7"
        if group:
            u.group_id = group
        return m

    g = customers_pb2.CustomerEvent(event_id=f"g-{gid}")
    g.occurred_at.FromDatetime(T)
    gu = g.group_upserted
    gu.group_id, gu.name, gu.sector, gu.handsets = gid, "江城水务", "water", 8
    await api.send("crm.customers.v1", gid, g)
    members = [f"{gid}m{i}" for i in range(3)]
    for i, cid in enumerate(members):
        await api.send("crm.customers.v1", cid, profile(cid, f"p-{cid}", T, gid, i == 0))
    # the last member leaves the group in 2026-02 (Shanghai), in the period asked about
    gone = members[-1]
    left = dt.datetime(2026, 2, 10, tzinfo=UTC)
    await api.send("crm.customers.v1", gone, profile(gone, f"p2-{gone}", left, None))

    for _ in range(300):
        r = await api.http.get(f"/v1/groups/{gid}")
        if r.status_code == 200 and r.json()["members"] == 2:
            break
        await asyncio.sleep(0.05)
    file = r.json()
    assert (file["class"], file["name"], file["handsets"]) == ("A", "江城水务", 8)  # water: A
    assert (file["key_persons"], file["manager_id"], file["complete"]) == (
        [members[0]],
        "M7",
        True,
    )
    assert [m["customer_id"] for m in file["member_list"]] == members[:2]  # key person first
    assert file["member_list"][0]["key_person"] is True
    got = (await api.http.get("/v1/reports/group-indicators", params={"period": "2026-02"})).json()
    assert got["filing_rate"]["by_class"]["A"]["complete"] == 1
    assert got["member_coverage"]["members"] == 2 and got["member_coverage"]["handsets"] == 8
    assert (got["stability"]["at_start"], got["stability"]["kept"]) == (3, 2)
    unknown = await api.http.get("/v1/groups/nope")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    bad = await api.http.get("/v1/reports/group-indicators", params={"period": "2026-13"})
    assert bad.status_code in (400, 422)
