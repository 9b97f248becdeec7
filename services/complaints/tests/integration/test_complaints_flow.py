"""Through the real broker and store, with an injectable clock (its ticks move the pipeline's
time): a filed complaint is received and acknowledged, goes at risk and breaches at the right
instants, escalates, and emits each step exactly once across a restart on another process's
state (recovered from the changelog); transitions and reports over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common import topics, tracing
from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.complaints.bootstrap import bootstrap
from hvc.complaints.pipeline import INPUTS
from hvc.complaints.settings import ComplaintsSettings
from hvc.devinfra import chaos
from hvc.devinfra.pytest_plugin import TopicWatch, start_group_at_end
from hvc.events.v1 import care_pb2, common_pb2, complaints_pb2, customers_pb2, tiering_pb2

pytestmark = pytest.mark.integration
UTC = dt.UTC
T0 = dt.datetime(2025, 5, 6, 2, 0, tzinfo=UTC)
TIERING_INPUTS = ComplaintsSettings().tiering_inputs
Status = complaints_pb2.ComplaintUpdated.Status
Sla = complaints_pb2.ComplaintUpdated.SlaState


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def filing(cid):
    m = care_pb2.ComplaintEvent(event_id=f"f-{cid}", customer_id=cid)
    m.occurred_at.FromDatetime(T0)
    m.complaint_filed.complaint_id = f"K-{cid}"
    m.complaint_filed.channel = care_pb2.ComplaintFiled.HOTLINE_10086
    m.complaint_filed.filed_at.FromDatetime(T0)
    return m


async def service_settings(infra, tmp_path, name, db, tiering_group, **complaints):
    """The service on the suite's broker and store, following `tiering_group` (started at the
    ends of tiering's inputs: caught up); its pipeline's group starts at the ends of its inputs
    and of the clock's topic (the ticks of earlier tests are not its time)."""
    await start_group_at_end(infra.kafka_bootstrap, tiering_group, TIERING_INPUTS)
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), [*INPUTS, topics.CLOCK])
    return dict(
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
        settings=ComplaintsSettings(tick_seconds=0.1, tiering_group=tiering_group, **complaints),
    )


def summary(seen):
    return [
        (
            m.event_id.split(" ")[-1] if " " in m.event_id else m.event_id.split(":", 1)[1],
            Status.Name(m.status),
            Sla.Name(m.sla_state),
            m.escalation_level,
        )
        for m in seen
    ]


async def shown(http: httpx.AsyncClient, kid: str, check: Any, within: float = 30.0) -> Any:
    """The complaint as the API shows it once `check` holds: the API reads the view the
    pipeline writes at its checkpoint, so an output read off the topic can come before it."""
    async with asyncio.timeout(within):
        while True:
            r = await http.get(f"/v1/complaints/{kid}")
            if r.status_code == 200 and check(r.json()):
                return r.json()
            await asyncio.sleep(0.1)


async def test_sla_milestones_once_each_across_a_restart(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    cid, kid, name, db = f"Q{tag}", f"K{tag}", f"complaints-it-{tag}", f"it_complaints_{tag}"
    settings = await service_settings(infra, tmp_path, name, db, f"tiering-it-{tag}")
    clock = Clock(T0)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    decided = tiering_pb2.TierDecided(
        event_id=f"t-{tag}", customer_id=cid, new_tier=common_pb2.DIAMOND, ruleset_version="x"
    )
    decided.occurred_at.FromDatetime(T0 - dt.timedelta(days=30))
    decided.effective_from.FromDatetime(T0 - dt.timedelta(days=30))
    decided.source = tiering_pb2.TierDecided.PLAN
    decided.old_tier = common_pb2.NONE
    filed = care_pb2.ComplaintEvent(event_id=f"f-{tag}", customer_id=cid)
    filed.occurred_at.FromDatetime(T0)
    filed.complaint_filed.complaint_id = kid
    filed.complaint_filed.channel = care_pb2.ComplaintFiled.HOTLINE_10086
    filed.complaint_filed.category = "network"
    filed.complaint_filed.text = "no signal at home"
    filed.complaint_filed.filed_at.FromDatetime(T0)

    async def publish(topic, m):
        await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())

    async with TopicWatch(
        infra.kafka_bootstrap, "hvc.complaints.v1", lambda m: m.customer_id == cid
    ) as watch:
        runtime, api = bootstrap(name=name, now=clock, **settings)
        await runtime.start()
        try:
            await publish("hvc.tier-decisions.v1", decided)
            await asyncio.sleep(1.0)  # the tier is known before the complaint
            await publish("care.complaints.v1", filed)
            await publish("care.complaints.v1", filed)  # redelivered: nothing new
            await watch.wait_for(1)
            clock.at = T0 + dt.timedelta(minutes=23, seconds=59)  # DIAMOND: 30 min response
            await asyncio.sleep(0.5)
            assert len(watch.seen) == 1
            clock.at = T0 + dt.timedelta(minutes=24)  # 80 %
            await watch.wait_for(2)
            clock.at = T0 + dt.timedelta(minutes=30)  # 100 %: breached, team lead
            await watch.wait_for(3)
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await shown(http, kid, lambda b: b["sla"]["state"] == "BREACHED")
                clock.at = T0 + dt.timedelta(minutes=31)
                ack = await http.post(
                    f"/v1/complaints/{kid}/transitions", json={"to": "ACKNOWLEDGED", "by": "a1"}
                )
                assert ack.status_code == 200, ack.text
                bad = await http.post(
                    f"/v1/complaints/{kid}/transitions", json={"to": "CLOSED", "by": "a1"}
                )
                assert bad.status_code == 409
                assert bad.headers["content-type"] == "application/problem+json"
                body = (await http.get(f"/v1/complaints/{kid}")).json()
                assert body["sla"]["policyVersion"] == "2025.1" and body["sla"]["tier"] == "DIAMOND"
                assert body["sla"]["targets"] == {
                    "first_response_minutes": 30,
                    "resolution_minutes": 1440,
                }
                assert body["status"] == "ACKNOWLEDGED" and body["tmfStatus"] == "acknowledged"
                assert body["sla"]["state"] == "BREACHED"
                assert body["sla"]["escalatedTo"] == "TEAM_LEAD"
                assert body["relatedParty"] == [{"id": cid, "role": "customer"}]
                assert [h["status"] for h in body["statusChangeHistory"]] == [
                    "RECEIVED",
                    "ACKNOWLEDGED",
                ]
            await watch.wait_for(4)
        finally:
            await runtime.stop()

        # The service was down while 150 % of the first response passed (but it was
        # acknowledged: nothing) and while 80 % of the resolution target passed: on restart
        # the at-risk step is emitted once, and nothing earlier again. It restarts as another
        # pod would, without the first one's local state: the complaint's state, its timers
        # and the milestones it emitted come back from the changelog.
        clock.at = T0 + dt.timedelta(hours=20)
        other = tmp_path / "another-pod"
        other.mkdir()
        settings["hvc"] = HvcSettings(data_dir=str(other))
        runtime, api = bootstrap(name=name, now=clock, **settings)
        await runtime.start()
        try:
            await watch.wait_for(5)
            clock.at = T0 + dt.timedelta(hours=24)  # resolution breached
            await watch.wait_for(6)
            await asyncio.sleep(1.0)
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await shown(http, kid, lambda b: b["sla"]["state"] == "BREACHED")
                wo = await http.post(
                    f"/v1/complaints/{kid}/transitions",
                    json={
                        "to": "DISPATCHED",
                        "by": "a1",
                        "department": "network-ops",
                        "transition_id": "x1",
                    },
                )
                again = await http.post(
                    f"/v1/complaints/{kid}/transitions",
                    json={
                        "to": "DISPATCHED",
                        "by": "a1",
                        "department": "network-ops",
                        "transition_id": "x1",
                    },
                )
                assert wo.status_code == again.status_code == 200
                orders = again.json()["workOrders"]
                assert len(orders) == 1 and orders[0]["department"] == "network-ops"
                done = await http.post(
                    f"/v1/complaints/{kid}/work-orders/{orders[0]['work_order_id']}/complete",
                    json={"by": "ops", "result": "antenna fixed"},
                )
                assert done.json()["workOrders"][0]["result"] == "antenna fixed"
                for step in ("RESOLVED",):
                    r = await http.post(
                        f"/v1/complaints/{kid}/transitions", json={"to": step, "by": "a1"}
                    )
                    assert r.status_code == 200
                nosat = await http.post(
                    f"/v1/complaints/{kid}/transitions", json={"to": "CALLBACK_DONE", "by": "a1"}
                )
                assert nosat.status_code == 409
                cb = await http.post(
                    f"/v1/complaints/{kid}/transitions",
                    json={"to": "CALLBACK_DONE", "by": "a1", "satisfaction": 4},
                )
                assert cb.json()["satisfaction"] == 4
                listing = (await http.get("/v1/complaints", params={"customer_id": cid})).json()
                assert listing["total"] == 1 and listing["items"][0]["id"] == kid
                sla = (await http.get("/v1/reports/sla")).json()
                assert sla["by_tier"]["DIAMOND"] == {"total": 1, "met": 0, "compliance": 0.0}
                sat = (await http.get("/v1/reports/satisfaction")).json()
                assert sat["mean"] == 4.0
                br = (await http.get("/v1/reports/breaches")).json()
                assert br["items"][0]["milestones"] == [
                    "first_response:100",
                    "first_response:80",
                    "resolution:100",
                    "resolution:80",
                ]
            await watch.wait_for(10)
            await asyncio.sleep(1.0)
        finally:
            await runtime.stop()
    await producer.stop()
    got = summary(watch.seen)
    assert got == [
        ("000000", "RECEIVED", "ON_TRACK", 0),
        ("first_response:80", "RECEIVED", "AT_RISK", 0),
        ("first_response:100", "RECEIVED", "BREACHED", 1),
        ("000001", "ACKNOWLEDGED", "BREACHED", 1),
        ("resolution:80", "ACKNOWLEDGED", "BREACHED", 1),  # first response stays breached
        ("resolution:100", "ACKNOWLEDGED", "BREACHED", 1),
        ("000002", "DISPATCHED", "BREACHED", 1),
        ("000003", "DISPATCHED", "BREACHED", 1),
        ("000004", "RESOLVED", "BREACHED", 1),
        ("000005", "CALLBACK_DONE", "BREACHED", 1),
    ]
    assert len({m.event_id for m in watch.seen}) == len(watch.seen)
    await chaos.drop_databases(infra.mongo_uri, [db])


async def test_a_later_tier_tightens_the_targets_whatever_arrives_first(infra, tmp_path):
    """A decision that takes effect after the filing makes the same change whether it
    arrives after the complaint (an open complaint's tier changed) or before it; an older
    decision, superseded before the filing, changes nothing when it comes again."""
    tag = uuid.uuid4().hex[:8]
    name, db = f"complaints-order-{tag}", f"it_complaints_order_{tag}"
    settings = await service_settings(infra, tmp_path, name, db, f"tiering-order-{tag}")
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    effective = T0 + dt.timedelta(minutes=10)

    def decision(cid, tier=common_pb2.DIAMOND, at=effective):
        m = tiering_pb2.TierDecided(
            event_id=f"t-{cid}-{at:%H%M}", customer_id=cid, new_tier=tier, ruleset_version="x"
        )
        m.occurred_at.FromDatetime(at)
        m.effective_from.FromDatetime(at)
        m.source, m.old_tier = tiering_pb2.TierDecided.PLAN, common_pb2.NONE
        return m

    async def publish(topic, m):
        await producer.send_and_wait(
            topic, codec_for(topic).serialize(m), key=m.customer_id.encode()
        )

    after, before = f"A{tag}", f"B{tag}"  # the decision after the filing / before it
    older = f"S{tag}"  # DIAMOND, then GOLD, both before the filing; DIAMOND again after it
    diamond = decision(older, common_pb2.DIAMOND, T0 - dt.timedelta(hours=2))
    async with TopicWatch(
        infra.kafka_bootstrap,
        "hvc.complaints.v1",
        lambda m: m.customer_id in (after, before, older),
    ) as watch:
        runtime, api = bootstrap(name=name, now=Clock(T0), **settings)
        await runtime.start()
        try:
            await publish("care.complaints.v1", filing(after))
            await publish("hvc.tier-decisions.v1", decision(before))
            await publish("hvc.tier-decisions.v1", diamond)
            gold = decision(older, common_pb2.GOLD, T0 - dt.timedelta(hours=1))
            await publish("hvc.tier-decisions.v1", gold)
            await watch.wait_for(1)
            await asyncio.sleep(1.0)  # the decisions are known before B's and S's complaints
            await publish("hvc.tier-decisions.v1", decision(after))
            await publish("care.complaints.v1", filing(before))
            await publish("care.complaints.v1", filing(older))
            await watch.wait_for(5)
            await publish("hvc.tier-decisions.v1", diamond)  # redelivered
            await asyncio.sleep(1.5)  # nothing more comes
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                slas = [
                    (await http.get(f"/v1/complaints/K-{c}")).json()["sla"] for c in (after, before)
                ]
        finally:
            await runtime.stop()
    await producer.stop()

    def changes(cid):
        return [
            (m.event_id.split(" ")[-1], m.occurred_at.ToDatetime(UTC), m.due_at.ToDatetime(UTC))
            for m in watch.seen
            if m.customer_id == cid
        ]

    assert changes(after) == [
        ("000000", T0, T0 + dt.timedelta(hours=24)),  # NONE: 24 h first response
        ("000001", effective, T0 + dt.timedelta(minutes=30)),  # DIAMOND: 30 min
    ]
    assert changes(before) == changes(after)
    assert changes(older) == [("000000", T0, T0 + dt.timedelta(hours=2))]  # GOLD: 2 h
    assert [(s["tier"], s["targets"]["first_response_minutes"]) for s in slas] == [
        ("DIAMOND", 30),
        ("DIAMOND", 30),
    ]
    await chaos.drop_databases(infra.mongo_uri, [db])


async def test_a_filing_takes_the_decisions_caused_before_it_was_published_whatever_arrives_first(
    infra, tmp_path
):
    """Tiering is behind: a filing waits until tiering's group has passed every input published
    before it, and then takes a decision caused before it (arriving after it) as its tier. A
    decision caused after a filing, arriving before the filing is handled, is a tier change on
    the complaint, as if it had arrived after it."""
    tag = uuid.uuid4().hex[:8]
    name, db, tiering = f"complaints-wait-{tag}", f"it_complaints_wait_{tag}", f"tiering-w-{tag}"
    settings = await service_settings(infra, tmp_path, name, db, tiering, tiering_wait_seconds=30)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def publish(topic, m, headers=()):
        meta = await producer.send_and_wait(
            topic, codec_for(topic).serialize(m), key=m.customer_id.encode(), headers=list(headers)
        )
        return meta.timestamp

    async def cause(cid):
        """An input of tiering's, for `cid`: what a decision names as its cause."""
        m = customers_pb2.CustomerEvent(event_id=f"c-{cid}-{uuid.uuid4().hex[:6]}", customer_id=cid)
        m.occurred_at.FromDatetime(T0)
        m.port_out_requested.kind = customers_pb2.PortOutRequested.ELIGIBILITY_QUERY
        return await publish("crm.customers.v1", m)

    def decision(cid, cause_ms):
        m = tiering_pb2.TierDecided(
            event_id=f"t-{cid}", customer_id=cid, new_tier=common_pb2.DIAMOND, ruleset_version="x"
        )
        m.occurred_at.FromDatetime(T0)
        m.effective_from.FromDatetime(T0 - dt.timedelta(days=30))  # in force at the filing
        m.source, m.old_tier = tiering_pb2.TierDecided.PLAN, common_pb2.NONE
        headers = [
            (tracing.CAUSE, b"crm.customers.v1/0/0"),
            (tracing.CAUSE_TS, str(cause_ms).encode()),
        ]
        return m, headers

    early, late = f"E{tag}", f"L{tag}"  # the decision caused before the filing / after it
    async with TopicWatch(
        infra.kafka_bootstrap, "hvc.complaints.v1", lambda m: m.customer_id in (early, late)
    ) as watch:
        runtime, api = bootstrap(name=name, now=Clock(T0), **settings)
        await runtime.start()
        try:
            before_ms = await cause(early)  # tiering has not taken it yet
            await publish("care.complaints.v1", filing(early))
            filed_ms = await publish("care.complaints.v1", filing(late))
            # A cause published in the filing's millisecond counts as known by it (timestamps
            # are all that orders two topics): the late one must come in a later one.
            await asyncio.sleep(0.005)
            after_ms = await cause(late)
            assert after_ms > filed_ms
            await asyncio.sleep(2.0)
            assert watch.seen == []  # both filings wait for tiering
            await publish("hvc.tier-decisions.v1", *decision(late, after_ms))
            await publish("hvc.tier-decisions.v1", *decision(early, before_ms))
            await start_group_at_end(infra.kafka_bootstrap, tiering, TIERING_INPUTS)  # caught up
            try:
                await watch.wait_for(3)
            except TimeoutError:
                app = runtime.streams[0][0]
                handled = {t: c._value.get() for t, c in app.pipeline._records.items()}
                pytest.fail(
                    f"seen {[m.event_id for m in watch.seen]}; stream problem {app.problem()!r}, "
                    f"runs {app.runs}; handled {handled}; "
                    f"frontier {api.state.frontier.describe()}; "
                    f"published before {before_ms}, after {after_ms}"
                )
            await asyncio.sleep(1.0)  # nothing more comes
        finally:
            await runtime.stop()
    await producer.stop()

    def changes(cid):
        return [
            (m.event_id.split(" ")[-1], m.due_at.ToDatetime(UTC))
            for m in watch.seen
            if m.customer_id == cid
        ]

    assert changes(early) == [("000000", T0 + dt.timedelta(minutes=30))]  # DIAMOND when filed
    assert changes(late) == [
        ("000000", T0 + dt.timedelta(hours=24)),  # NONE when filed
        ("000001", T0 + dt.timedelta(minutes=30)),  # then DIAMOND
    ]
    await chaos.drop_databases(infra.mongo_uri, [db])


async def test_views_are_rebuilt_from_the_topics_publishing_nothing(infra, tmp_path):
    """`python -m hvc.complaints rebuild-views`: the complaints and outcomes views, deleted,
    are written again from the inputs and the group's own event-time ticks, as the stream
    wrote them (a milestone the clock reached, a transition an agent made), and nothing is
    published."""
    tag = uuid.uuid4().hex[:8]
    cid, kid = f"V{tag}", f"KV{tag}"
    name, db = f"complaints-rb-{tag}", f"it_complaints_rb_{tag}"
    settings = await service_settings(infra, tmp_path, name, db, f"tiering-rb-{tag}")
    since = await chaos.end_offsets_by_name(infra.kafka_bootstrap, [*INPUTS, topics.CLOCK])
    clock = Clock(T0)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    decided = tiering_pb2.TierDecided(
        event_id=f"t-{tag}", customer_id=cid, new_tier=common_pb2.GOLD, ruleset_version="x"
    )
    decided.occurred_at.FromDatetime(T0 - dt.timedelta(days=30))
    decided.effective_from.FromDatetime(T0 - dt.timedelta(days=30))
    decided.source, decided.old_tier = tiering_pb2.TierDecided.PLAN, common_pb2.NONE
    filed = filing(cid)
    filed.complaint_filed.complaint_id = kid
    store: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    views, outcomes = store[db]["complaints"], store[db]["outcomes"]
    try:
        async with TopicWatch(
            infra.kafka_bootstrap, "hvc.complaints.v1", lambda m: m.customer_id == cid
        ) as watch:
            runtime, api = bootstrap(name=name, now=clock, **settings)
            await runtime.start()
            try:
                for topic, m in (("hvc.tier-decisions.v1", decided), ("care.complaints.v1", filed)):
                    await producer.send_and_wait(
                        topic, codec_for(topic).serialize(m), key=cid.encode()
                    )
                await watch.wait_for(1)
                clock.at = T0 + dt.timedelta(minutes=100)  # GOLD: 2 h; 80 % is 96 min
                await watch.wait_for(2)
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api), base_url="http://t"
                ) as http:
                    await shown(http, kid, lambda b: b["sla"]["state"] == "AT_RISK")
                    ack = await http.post(
                        f"/v1/complaints/{kid}/transitions",
                        json={"to": "ACKNOWLEDGED", "by": "a1", "transition_id": f"x-{tag}"},
                    )
                    assert ack.status_code == 200, ack.text
                await watch.wait_for(3)
            finally:
                await runtime.stop()
            view = await views.find_one({"_id": kid})
            outcome = await outcomes.find_one({"_id": f"x-{tag}"})
            assert view is not None and view["status"] == "ACKNOWLEDGED"
            assert view["sla"]["milestones"] == ["first_response:80"] and outcome is not None
            published = len(watch.seen)

            await views.delete_many({})
            await outcomes.delete_many({})
            rebuilder, _ = bootstrap(name=name, now=clock, **settings)
            try:
                stats = await rebuilder.rebuild_views(idle_s=5.0, since=since)
            finally:
                await rebuilder.mongo.close()
            assert stats["partitions_short"] == 0
            assert await views.find_one({"_id": kid}) == view
            assert await outcomes.find_one({"_id": f"x-{tag}"}) == outcome
            await asyncio.sleep(2.0)
            assert len(watch.seen) == published  # the rebuild published nothing
    finally:
        await producer.stop()
        await store.drop_database(db)
        await store.close()
