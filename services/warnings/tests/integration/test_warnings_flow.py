"""Through the real broker and store: events in, warnings out, tasks in MongoDB, one warning
per (customer, code, period) under redelivery, windows that survive a restart, and the daily
and monthly closes driven by the event-time watermark."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.topics import CLOCK
from hvc.devinfra.pytest_plugin import TopicWatch, start_group_at_end
from hvc.events.v1 import (
    accounts_pb2,
    calls_pb2,
    common_pb2,
    customers_pb2,
    usage_pb2,
    warnings_pb2,
)
from hvc.warnings.bootstrap import bootstrap
from hvc.warnings.pipeline import INPUTS
from hvc.warnings.settings import WarningsSettings

pytestmark = pytest.mark.integration
UTC = dt.UTC


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def call(eid, cid, when, other="13800138000", seconds=30, forwarded_to=None):
    m = calls_pb2.CallRecorded(
        event_id=eid,
        customer_id=cid,
        msisdn="13900000000",
        other_number=other,
        direction=calls_pb2.CallRecorded.OUTGOING,
        duration_s=seconds,
    )
    m.occurred_at.FromDatetime(when)
    if forwarded_to:
        m.forwarded_to = forwarded_to
    return ("network.calls.v1", m)


def envelope(topic, eid, cid, when, **payload):
    m = codec_for(topic).message_type(event_id=eid, customer_id=cid)
    m.occurred_at.FromDatetime(when)
    for k, v in payload.items():
        getattr(m, k).CopyFrom(v)
    return (topic, m)


def account(eid, cid, when, **payload):
    return envelope("billing.accounts.v1", eid, cid, when, **payload)


def bill(eid, cid, period, amount):
    due = common_pb2.Date(year=2025, month=3, day=20)
    b = accounts_pb2.BillIssued(
        bill_id=f"B{period}", period=period, amount_fen=amount, countable_fen=amount, due_on=due
    )
    return account(eid, cid, at("2025-03-01T02:00:00"), bill_issued=b)


def data(eid, cid, when, volume):
    m = usage_pb2.UsageRecorded(
        event_id=eid,
        customer_id=cid,
        msisdn="13900000000",
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=usage_pb2.UsageRecorded.DOMESTIC,
        volume_bytes=volume,
    )
    m.occurred_at.FromDatetime(when)
    return ("billing.usage.v1", m)


def customer(eid, cid, when, **payload):
    return envelope("crm.customers.v1", eid, cid, when, **payload)


async def test_events_in_warnings_out_once_and_windows_survive_a_restart(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    cid, name, db = f"W{tag}", f"warnings-it-{tag}", f"it_warnings_{tag}"
    settings = dict(
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
    )
    rival_fwd = "18912345678"
    first = [
        customer(
            f"u-{tag}",
            cid,
            at("2025-02-01T00:00:00"),
            customer_upserted=customers_pb2.CustomerUpserted(
                msisdns=["13900000000"], name="n", manager_id="M7"
            ),
        ),
        call(f"c1-{tag}", cid, at("2025-03-01T04:00:00"), "10010", 60),  # not over 60 s
        call(f"c2-{tag}", cid, at("2025-03-01T05:00:00"), "10010", 61),
        # Forwarding at 23:59 and 00:01 Shanghai time: two local days.
        call(f"f1-{tag}", cid, at("2025-03-01T15:59:00"), forwarded_to=rival_fwd),
        call(f"f2-{tag}", cid, at("2025-03-01T16:01:00"), forwarded_to=rival_fwd),
        bill(f"b1-{tag}", cid, "2024-11", 5_000),
        bill(f"b2-{tag}", cid, "2024-12", 5_000),
        bill(f"b3-{tag}", cid, "2025-01", 5_001),
        bill(f"b4-{tag}", cid, "2025-02", 100),
        customer(
            f"p-{tag}",
            cid,
            at("2025-03-02T09:00:00"),
            port_out_requested=customers_pb2.PortOutRequested(
                kind=customers_pb2.PortOutRequested.ELIGIBILITY_QUERY
            ),
        ),
        account(
            f"s-{tag}",
            cid,
            at("2025-03-02T10:00:00"),
            account_suspended=accounts_pb2.AccountSuspended(
                reason=accounts_pb2.AccountSuspended.KEEP_NUMBER
            ),
        ),
        # Pays the three oldest bills (oldest first); the 2025-02 bill (due 03-20) stays open.
        account(
            f"pay-{tag}",
            cid,
            at("2025-03-05T01:00:00"),
            payment_received=accounts_pb2.PaymentReceived(amount_fen=15_001),
        ),
        data(f"d1-{tag}", cid, at("2024-12-10T00:00:00"), 1_000),
        data(f"d2-{tag}", cid, at("2025-01-10T00:00:00"), 1_000),
        data(f"d3-{tag}", cid, at("2025-02-10T00:00:00"), 1_000),
    ]
    second = [
        call(f"f3-{tag}", cid, at("2025-03-03T02:00:00"), forwarded_to=rival_fwd),
        data(f"d4-{tag}", cid, at("2025-03-10T00:00:00"), 100),
        # Past local midnight of April 1st plus the grace: March closes (DATA_DROP).
        data(f"d5-{tag}", cid, at("2025-04-01T00:00:00"), 5_000),
        # The accounts watermark reaches 03-22: due soon on 03-17, overdue from 03-21 local.
        account(
            f"r-{tag}",
            cid,
            at("2025-03-22T00:00:00"),
            account_resumed=accounts_pb2.AccountResumed(),
        ),
    ]

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(events):
        for topic, m in events:
            await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())

    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    async with TopicWatch(
        infra.kafka_bootstrap, "hvc.warnings.v1", lambda m: m.customer_id == cid
    ) as watch:
        runtime, _ = bootstrap(name=name, **settings)
        await runtime.start()
        try:
            await send(first)
            seen = await watch.wait_for(4)
        finally:
            await runtime.stop()
        names = {warnings_pb2.WarningRaised.Code.Name(m.warning_raised.code) for m in seen}
        assert names == {
            "RIVAL_SERVICE_CALL",
            "SPEND_DROP",
            "PORT_OUT_QUERY",
            "KEEP_NUMBER_SUSPENSION",
        }

        # Restart mid-window: two forwarding days and three months of data volume are in the
        # state log; the third day and the fourth month, delivered to a new process, complete
        # them. Redelivered events add nothing.
        runtime, _ = bootstrap(name=name, **settings)
        await runtime.start()
        try:
            await send(first)
            await send(second)
            seen = await watch.wait_for(8)
            await asyncio.sleep(2.0)
        finally:
            await runtime.stop()
    by_code = {
        warnings_pb2.WarningRaised.Code.Name(m.warning_raised.code): m.warning_raised
        for m in watch.seen
    }
    fwd = by_code["FORWARD_TO_RIVAL"]
    assert fwd.period == "2025-03-03" and fwd.level == 1
    assert {w.category for w in by_code.values()} == {warnings_pb2.WarningRaised.CARE}
    assert (by_code["DATA_DROP"].period, dict(by_code["DATA_DROP"].evidence.figures)) == (
        "2025-03",
        {"volume_bytes": 100, "previous_3_months_bytes": 3_000},
    )
    assert by_code["DATA_DROP"].detected_at.ToDatetime(UTC) == at("2025-03-31T16:00:00")
    assert by_code["PAYMENT_DUE_SOON"].period == "2025-02"
    assert by_code["PAYMENT_DUE_SOON"].detected_at.ToDatetime(UTC) == at("2025-03-16T16:00:00")
    assert by_code["OVERDUE"].detected_at.ToDatetime(UTC) == at("2025-03-20T16:00:00")
    assert len(watch.seen) == 8
    assert len({m.event_id for m in watch.seen}) == 8
    spend = next(m for m in watch.seen if m.warning_raised.period == "2025-02")
    assert dict(spend.warning_raised.evidence.figures) == {
        "amount_fen": 100,
        "previous_3_months_fen": 15_001,
    }
    await producer.stop()

    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    try:
        tasks = await client[db]["tasks"].find({"customer_id": cid}).to_list()
        assert len(tasks) == 8 and {t["manager_id"] for t in tasks} == {"M7"}
        assert not [t for t in tasks if "_staffing_group" in t]  # staffing's, not the view's
        suspension = next(t for t in tasks if t["code"] == "KEEP_NUMBER_SUSPENSION")
        assert suspension["due_at"] - suspension["opened_at"] == dt.timedelta(hours=72)
        assert await client[db]["warnings"].count_documents({}) == 8
    finally:
        await client.drop_database(db)
        await client.close()


async def test_with_the_wall_clock_a_bill_goes_overdue_with_no_record_after_it(infra, tmp_path):
    """HVC_WARNINGS_CLOCK=wall: the service ticks the wall clock into every partition of
    hvc.clock.v1 and its pipeline reads it, so a bill whose due day has passed is overdue
    although nothing else comes to its partition."""
    tag = uuid.uuid4().hex[:8]
    cid, name, db = f"K{tag}", f"warnings-clock-{tag}", f"it_warnings_clock_{tag}"
    zone = ZoneInfo("Asia/Shanghai")
    today = dt.datetime.now(zone).date()
    due = today - dt.timedelta(days=3)
    issued = dt.datetime.combine(today - dt.timedelta(days=6), dt.time(10), zone)
    b = accounts_pb2.BillIssued(
        bill_id=f"B{tag}",
        period="2025-01",
        amount_fen=9_000,
        countable_fen=9_000,
        due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
    )
    topic, bill_event = account(f"b-{tag}", cid, issued.astimezone(UTC), bill_issued=b)
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), [*INPUTS, CLOCK])
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with TopicWatch(
            infra.kafka_bootstrap, "hvc.warnings.v1", lambda m: m.customer_id == cid
        ) as watch:
            runtime, _ = bootstrap(
                name=name,
                hvc=HvcSettings(data_dir=str(tmp_path)),
                kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
                mongo=MongoSettings(uri=infra.mongo_uri, database=db),
                settings=WarningsSettings(clock="wall", clock_tick_seconds=0.5),
            )
            # Published before the service starts ticking: the engine takes its inputs in
            # the order they were published, so the bill comes before the first tick, which
            # moves the partition's time from the bill's to now.
            await producer.send_and_wait(
                topic, codec_for(topic).serialize(bill_event), key=cid.encode()
            )
            await runtime.start()
            try:
                seen = await watch.wait_for(2, within=60)
            finally:
                await runtime.stop()
    finally:
        await producer.stop()
    codes = {warnings_pb2.WarningRaised.Code.Name(m.warning_raised.code) for m in seen}
    assert codes == {"PAYMENT_DUE_SOON", "OVERDUE"}
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    try:
        await client.drop_database(db)
    finally:
        await client.close()
