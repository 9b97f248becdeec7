"""Through the real broker and store: events in, TierDecided out, the views in MongoDB; a
group's key person decided through the group's repartition; the annual run is re-runnable and
redelivered events decide nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp

from hvc.common.codec import codec_for
from hvc.common.kafka import producer
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.devinfra.pytest_plugin import TopicWatch, start_group_at_end
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2, tiering_pb2
from hvc.tiering.bootstrap import bootstrap
from hvc.tiering.decisions import Commands, run_annual
from hvc.tiering.pipeline import INPUTS

pytestmark = pytest.mark.integration
UTC = dt.UTC
OUT = "hvc.tier-decisions.v1"


def ts(v: dt.datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(v)
    return t


def customer_event(eid: str, cid: str, at: dt.datetime, **payload) -> customers_pb2.CustomerEvent:
    m = customers_pb2.CustomerEvent(event_id=eid, customer_id=cid, **payload)
    m.occurred_at.CopyFrom(ts(at))
    return m


def upsert(eid, cid, at, joined, group_id=None, key_person=False):
    u = customers_pb2.CustomerUpserted(
        msisdns=["13800138000"],
        name="n",
        is_key_person=key_person,
        joined_on=common_pb2.Date(year=joined.year, month=joined.month, day=joined.day),
    )
    if group_id:
        u.group_id = group_id
    return customer_event(eid, cid, at, customer_upserted=u)


def plan(eid, cid, at, fee, start):
    p = customers_pb2.PlanChanged(plan_id=f"P{fee}", monthly_fee_fen=fee, gotone=True)
    p.effective_from.CopyFrom(ts(start))
    return customer_event(eid, cid, at, plan_changed=p)


def bill(eid, cid, at, period, countable):
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id=cid)
    m.occurred_at.CopyFrom(ts(at))
    m.bill_issued.CopyFrom(
        accounts_pb2.BillIssued(
            bill_id=f"B-{cid}-{period}",
            period=period,
            amount_fen=countable + 5000,
            countable_fen=countable,
            due_on=common_pb2.Date(year=2026, month=1, day=20),
        )
    )
    return m


class Decisions(TopicWatch):
    """TierDecided for the test's customers, from the topic's end onwards."""

    def __init__(self, bootstrap_servers: str, customers: set[str]) -> None:
        super().__init__(bootstrap_servers, OUT, lambda m: m.customer_id in customers)

    async def wait_until(self, pred, within=60.0):
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: [m for m in self.seen if pred(m)])
        return [m for m in self.seen if pred(m)]


async def test_events_in_decisions_out_annual_rerun_and_redelivery(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    x, y, g = f"X{tag}", f"Y{tag}", f"G{tag}"
    db = f"it_tiering_{tag}"
    mongo = MongoSettings(uri=infra.mongo_uri, database=db)
    kafka = KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)
    runtime, api = bootstrap(
        name=f"tiering-it-{tag}", hvc=HvcSettings(data_dir=str(tmp_path)), kafka=kafka, mongo=mongo
    )
    commands: Commands = api.state.commands
    repo = commands.repo
    out = await Decisions(infra.kafka_bootstrap, {x, y}).__aenter__()
    prod = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await prod.start()
    customers, accounts = codec_for("crm.customers.v1"), codec_for("billing.accounts.v1")
    t = dt.datetime(2025, 1, 5, tzinfo=UTC)
    x_events = [
        upsert(f"u1-{tag}", x, t, dt.date(2015, 1, 1)),
        plan(f"p1-{tag}", x, t, 38_800, dt.datetime(2025, 3, 1, tzinfo=UTC)),
    ]
    x_bills = [bill(f"b{m}-{tag}", x, t, f"2025-{m:02d}", 30_833) for m in range(1, 13)]
    group = customers_pb2.CustomerEvent(event_id=f"g1-{tag}")
    group.occurred_at.CopyFrom(ts(t))
    group.group_upserted.CopyFrom(
        customers_pb2.GroupUpserted(
            group_id=g, name="City Hall", sector="government", handsets=40, monthly_spend_fen=1
        )
    )
    y_events = [upsert(f"u2-{tag}", y, t + dt.timedelta(hours=1), dt.date(2020, 6, 1), g, True)]

    async def send_all():
        for m in x_events:
            await prod.send_and_wait("crm.customers.v1", customers.serialize(m), key=x.encode())
        for m in x_bills:
            await prod.send_and_wait("billing.accounts.v1", accounts.serialize(m), key=x.encode())
        await prod.send_and_wait("crm.customers.v1", customers.serialize(group), key=g.encode())
        for m in y_events:
            await prod.send_and_wait("crm.customers.v1", customers.serialize(m), key=y.encode())

    await start_group_at_end(infra.kafka_bootstrap, stream_group(f"tiering-it-{tag}", db), INPUTS)
    await runtime.start()
    try:
        await send_all()
        [px] = await out.wait_until(lambda m: m.customer_id == x)
        assert (px.old_tier, px.new_tier) == (common_pb2.NONE, common_pb2.PLATINUM)
        assert px.source == tiering_pb2.TierDecided.PLAN
        assert px.ruleset_version == "2025.1"
        assert px.effective_from.ToDatetime(tzinfo=UTC) == dt.datetime(2025, 3, 1, tzinfo=UTC)
        # The decision names its cause: x's last record on crm.customers.v1 (the plan).
        cause = out.causes[[m.event_id for m in out.seen].index(px.event_id)]
        assert cause is not None and cause[0].startswith("crm.customers.v1/")
        [py] = await out.wait_until(lambda m: m.customer_id == y)
        assert py.new_tier == common_pb2.PLATINUM
        assert py.source == tiering_pb2.TierDecided.GROUP_KEY_PERSON
        # The group's partition shared its snapshot with its key person's (the groups view,
        # written at the checkpoint: the decision may be read before it).
        async with asyncio.timeout(30):
            while True:
                group_view = await repo.groups.find_one({"_id": g})
                if group_view is not None:
                    break
                await asyncio.sleep(0.2)
        assert set(group_view["snapshots"]) == {f"g1-{tag}"}

        # Bills are stored once, whatever is redelivered.
        async with asyncio.timeout(30):
            while True:
                facts = await repo.facts(x)
                if facts and len(facts.bills) == 12:
                    break
                await asyncio.sleep(0.2)

        # Annual run: 12 x 308.33 yuan countable = 3699 points + 300 tenure = 3999: PLATINUM,
        # the same as the plan tier, so the effective tier does not change: nothing to emit.
        async with producer(kafka) as send:
            cli = Commands(repo, commands.book, send)
            first = await run_annual(cli, 2025, dt.date(2026, 1, 15))
            assert (first.changed_results, first.decisions) == (2, 0)
            ax = (await repo.facts(x)).annual["2025"]
            ay = (await repo.facts(y)).annual["2025"]
            assert (ax.score, ax.tier.name) == (3999, "PLATINUM")
            assert (ay.score, ay.tenure_years, ay.tier.name) == (200, 5, "VIP")
            await asyncio.sleep(2.0)  # the pipeline takes the results: no decision
            assert len(out.seen) == 2
            # One more yuan of countable spend in a re-issued December bill: 4000, DIAMOND.
            reissue = bill(f"b12r-{tag}", x, t + dt.timedelta(days=400), "2025-12", 30_933)
            await prod.send_and_wait(
                "billing.accounts.v1", accounts.serialize(reissue), key=x.encode()
            )
            async with asyncio.timeout(30):
                while True:
                    facts = await repo.facts(x)
                    assert facts is not None
                    if facts.bills[f"B-{x}-2025-12"].countable_fen == 30_933:
                        break
                    await asyncio.sleep(0.2)
            second = await run_annual(cli, 2025, dt.date(2026, 1, 15))
            assert (second.changed_results, second.decisions) == (1, 1)
            [dx] = await out.wait_until(
                lambda m: m.customer_id == x and m.new_tier == common_pb2.DIAMOND
            )
            async with asyncio.timeout(30):  # the history view has it too
                while True:
                    if await repo.history.find_one({"event_id": dx.event_id}):
                        break
                    await asyncio.sleep(0.2)
            third = await run_annual(cli, 2025, dt.date(2026, 1, 15))
            assert third.changed_results == 0 and third.decisions == 0
        assert dx.source == tiering_pb2.TierDecided.ANNUAL
        # Its cause: the annual run's command, a record of the pipeline's own input.
        cause = out.causes[[m.event_id for m in out.seen].index(dx.event_id)]
        assert cause is not None and cause[0].startswith("hvc.tiering-commands.v1/")
        assert (dx.consumption_points, dx.tenure_points, dx.score) == (3700, 300, 4000)
        assert dx.effective_from.ToDatetime(tzinfo=UTC) == dt.datetime(2026, 1, 31, 16, tzinfo=UTC)

        # Redelivery of everything, then a sentinel on x's partition: only the sentinel decides.
        await send_all()
        sentinel = plan(f"p2-{tag}", x, t, 58_800, dt.datetime(2025, 6, 1, tzinfo=UTC))
        await prod.send_and_wait("crm.customers.v1", customers.serialize(sentinel), key=x.encode())
        await out.wait_until(
            lambda m: (
                m.customer_id == x
                and m.source == tiering_pb2.TierDecided.PLAN
                and m.new_tier == common_pb2.DIAMOND
            )
        )
        await asyncio.sleep(1.0)
        ids = [m.event_id for m in out.seen]
        assert len(ids) == len(set(ids)) == 4  # x: PLATINUM, DIAMOND (annual), DIAMOND (plan); y
        # The view is written at the checkpoint after the decision is published: wait for it.
        mine = {"customer_id": {"$in": [x, y]}}
        async with asyncio.timeout(30):
            while True:
                if await repo.history.count_documents(mine) >= 4:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        assert await repo.history.count_documents(mine) == 4
    finally:
        await prod.stop()
        await out.__aexit__()
        await runtime.stop()
        client = runtime.mongo.__class__(infra.mongo_uri)
        await client.drop_database(db)
        await client.close()
