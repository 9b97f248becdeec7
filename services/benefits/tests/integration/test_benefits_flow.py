"""Through the real broker and store: tier decisions in, entitlements out; 50 concurrent claims
against a quota of 6; idempotent replay; a downgrade between grant and claim; one restoration
per suspension episode; the birthday waiver and its next-day notice; claims expiring in event
time; and a whole day of events redelivered to a new process producing no second grant,
command or notice."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.benefits.bootstrap import bootstrap
from hvc.benefits.pipeline import INPUTS
from hvc.benefits.settings import BenefitsSettings
from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.devinfra import chaos
from hvc.devinfra.pytest_plugin import TopicWatch, start_group_at_end
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2, tiering_pb2, usage_pb2

pytestmark = pytest.mark.integration
UTC = dt.UTC
# Local (Shanghai) 2025-06-10 is the birthday; local midnight is 2025-06-09T16:00Z.
BIRTHDAY_START = dt.datetime(2025, 6, 9, 16, 0, tzinfo=UTC)
T = dt.datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def upsert(cid: str, eid: str, at: dt.datetime):
    m = customers_pb2.CustomerEvent(event_id=eid, customer_id=cid)
    m.occurred_at.FromDatetime(at)
    u = m.customer_upserted
    u.name, u.credit_restore_hours = "n", 24
    u.msisdns.append("13900000000")
    u.birthday.CopyFrom(common_pb2.Date(year=1990, month=6, day=10))
    u.joined_on.CopyFrom(common_pb2.Date(year=2010, month=1, day=1))
    return ("crm.customers.v1", m)


def decided(cid: str, eid: str, old, new, at: dt.datetime):
    m = tiering_pb2.TierDecided(
        event_id=eid, customer_id=cid, old_tier=old, new_tier=new, ruleset_version="2025.1"
    )
    m.source = tiering_pb2.TierDecided.PLAN
    m.occurred_at.FromDatetime(at)
    m.effective_from.FromDatetime(at)
    return ("hvc.tier-decisions.v1", m)


def account(cid: str, eid: str, at: dt.datetime, **payload):
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id=cid)
    m.occurred_at.FromDatetime(at)
    for k, v in payload.items():
        getattr(m, k).CopyFrom(v)
    return ("billing.accounts.v1", m)


def usage(cid: str, eid: str, at: dt.datetime, fen: int, roaming=usage_pb2.UsageRecorded.DOMESTIC):
    m = usage_pb2.UsageRecorded(
        event_id=eid,
        customer_id=cid,
        msisdn="13900000000",
        kind=usage_pb2.UsageRecorded.VOICE,
        roaming=roaming,
        charged_fen=fen,
        duration_s=60,
    )
    m.occurred_at.FromDatetime(at)
    return ("billing.usage.v1", m)


async def test_entitlements_claims_commands_and_birthday_once_each(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    cid, name, db = f"B{tag}", f"benefits-it-{tag}", f"it_benefits_{tag}"
    clock = Clock(T)
    settings = dict(
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
        settings=BenefitsSettings(flush_interval_seconds=0.2),
    )
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(events):
        for topic, m in events:
            await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())

    async def tier_is(http: httpx.AsyncClient, tier: str) -> None:
        """Until the stream's tiers view (written at its commit) says `tier`."""
        for _ in range(100):
            if (await http.get(f"/v1/customers/{cid}/benefits")).json()["tier"] == tier:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the tiers view never said {tier}")

    mine = lambda m: m.customer_id == cid  # noqa: E731
    suspended = accounts_pb2.AccountSuspended(reason=accounts_pb2.AccountSuspended.ARREARS)
    day = [
        upsert(cid, f"u1-{tag}", T - dt.timedelta(days=60)),
        decided(cid, f"t1-{tag}", common_pb2.NONE, common_pb2.GOLD, T - dt.timedelta(days=30)),
        decided(cid, f"t2-{tag}", common_pb2.GOLD, common_pb2.DIAMOND, T - dt.timedelta(days=1)),
    ]
    async with (
        TopicWatch(infra.kafka_bootstrap, "hvc.benefits.v1", mine) as benefits,
        TopicWatch(infra.kafka_bootstrap, "billing.commands.v1", mine) as commands,
        TopicWatch(infra.kafka_bootstrap, "hvc.notifications.v1", mine) as notices,
    ):
        runtime, api = bootstrap(name=name, now=clock, **settings)
        await runtime.start()
        try:
            await send(day)
            await benefits.wait_for(8)  # GOLD: 4 grants; DIAMOND: 4 grants
            granted = Counter(
                (m.benefit_granted.code, m.benefit_granted.quantity) for m in benefits.seen
            )
            assert granted[("AIRPORT_LOUNGE", 6)] == 1 and granted[("INTL_ROAMING_PACK", 7)] == 1
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await tier_is(http, "DIAMOND")
                url = f"/v1/customers/{cid}/benefits/AIRPORT_LOUNGE/claims"
                answers = await asyncio.gather(
                    *(
                        http.post(url, headers={"Idempotency-Key": f"key-{i:04d}"})
                        for i in range(50)
                    )
                )
                codes = Counter(a.status_code for a in answers)
                assert codes == {201: 6, 409: 44}
                refused = next(a for a in answers if a.status_code == 409)
                assert refused.json()["reason"] == "quota-exhausted"
                assert refused.headers["content-type"] == "application/problem+json"
                won = next(i for i, a in enumerate(answers) if a.status_code == 201)
                replay = await http.post(url, headers={"Idempotency-Key": f"key-{won:04d}"})
                assert replay.status_code == 201 and replay.json() == answers[won].json()
                lost = next(i for i, a in enumerate(answers) if a.status_code == 409)
                again = await http.post(url, headers={"Idempotency-Key": f"key-{lost:04d}"})
                assert again.status_code == 409 and again.json() == answers[lost].json()
                no_key = await http.post(url)
                assert no_key.status_code == 422
                # A claim cut short after its entry was written (the store went away before
                # its answer was kept): its key is in progress for the lease, then a retry
                # answers with that entry, not a second one.
                store: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
                requests = store[db]["claim_requests"]
                rid = f"{cid}|AIRPORT_LOUNGE|key-{won:04d}"
                cut = {"$unset": {"status": "", "body": ""}, "$set": {"at": T}}
                await requests.update_one({"_id": rid}, cut)
                busy = await http.post(url, headers={"Idempotency-Key": f"key-{won:04d}"})
                assert (busy.status_code, busy.json()["title"]) == (409, "Claim in progress")
                stale = T - dt.timedelta(minutes=1)
                await requests.update_one({"_id": rid}, {"$set": {"at": stale}})
                resumed = await http.post(url, headers={"Idempotency-Key": f"key-{won:04d}"})
                assert resumed.status_code == 201
                assert resumed.json()["claim_id"] == answers[won].json()["claim_id"]
                await store.close()
                balances = (await http.get(f"/v1/customers/{cid}/benefits")).json()
                lounge = next(b for b in balances["benefits"] if b["code"] == "AIRPORT_LOUNGE")
                assert (balances["tier"], lounge["used"], lounge["remaining"]) == ("DIAMOND", 6, 0)
                pack = await http.post(
                    f"/v1/customers/{cid}/benefits/INTL_ROAMING_PACK/claims",
                    headers={"Idempotency-Key": "pack-0001"},
                )
                assert pack.status_code == 201 and pack.json()["quantity"] == 7
                assert pack.json()["valid_to"] == (T + dt.timedelta(days=90)).isoformat()

                # Downgrade to SILVER: STAR_DAY is revoked unclaimed; it can no longer be claimed.
                await send([decided(cid, f"t3-{tag}", common_pb2.DIAMOND, common_pb2.SILVER, T)])
                await benefits.wait_for(8 + 6 + 1 + 4)  # SILVER: 3 grants, 1 revocation
                await tier_is(http, "SILVER")
                clock.at = T + dt.timedelta(minutes=1)
                star = await http.post(
                    f"/v1/customers/{cid}/benefits/STAR_DAY/claims",
                    headers={"Idempotency-Key": "star-0001"},
                )
                assert star.status_code == 409, star.json()
                assert star.json()["reason"] == "not-eligible"
            revoked = [m.benefit_revoked for m in benefits.seen if m.HasField("benefit_revoked")]
            assert [(r.code, r.quantity) for r in revoked] == [("STAR_DAY", 2)]

            # Arrears: one RestoreService, SILVER 48 h beats the credit rating's 24 h; a second
            # suspension in the same episode and a redelivery send nothing more.
            s1 = account(cid, f"s1-{tag}", T + dt.timedelta(days=2), account_suspended=suspended)
            s2 = account(cid, f"s2-{tag}", T + dt.timedelta(days=3), account_suspended=suspended)
            await send([s1, s2, s1])
            await commands.wait_for(1)

            # The birthday: local midnight of 06-10 passes on the customers partition.
            await send(
                [
                    usage(cid, f"x1-{tag}", BIRTHDAY_START + dt.timedelta(hours=2), 150),
                    usage(cid, f"x2-{tag}", BIRTHDAY_START + dt.timedelta(hours=3), 250),
                    usage(cid, f"x2-{tag}", BIRTHDAY_START + dt.timedelta(hours=3), 250),  # dup
                    usage(
                        cid,
                        f"x3-{tag}",
                        BIRTHDAY_START + dt.timedelta(hours=4),
                        999,
                        usage_pb2.UsageRecorded.HMT,
                    ),
                    usage(cid, f"x4-{tag}", BIRTHDAY_START - dt.timedelta(minutes=1), 777),
                    upsert(cid, f"u2-{tag}", BIRTHDAY_START + dt.timedelta(minutes=20)),
                ]
            )
            await commands.wait_for(2)
            await notices.wait_for(1)
            await asyncio.sleep(1.0)  # the usage flushes before the next midnight
            await send(
                [upsert(cid, f"u3-{tag}", BIRTHDAY_START + dt.timedelta(days=1, minutes=20))]
            )
            await notices.wait_for(2)

            # A lounge claim is valid 30 days: once the partition's time passes that (event
            # time here; the wall clock's ticks in production), BenefitExpired, once each.
            await send([upsert(cid, f"u4-{tag}", T + dt.timedelta(days=31))])
            await benefits.wait_for(19 + 6)
            expired = [m.benefit_expired for m in benefits.seen if m.HasField("benefit_expired")]
            assert {(e.code, common_pb2.Tier.Name(e.tier)) for e in expired} == {
                ("AIRPORT_LOUNGE", "DIAMOND")
            } and len(expired) == 6
        finally:
            await runtime.stop()

        # A new process; the whole day redelivered: no second grant, command or notice.
        counts = (len(benefits.seen), len(commands.seen), len(notices.seen))
        runtime, api = bootstrap(name=name, now=clock, **settings)
        await runtime.start()
        try:
            await send([*day, s1, s2])
            await send(
                [upsert(cid, f"u3-{tag}", BIRTHDAY_START + dt.timedelta(days=1, minutes=20))]
            )
            await send([upsert(cid, f"u4-{tag}", T + dt.timedelta(days=31))])
            await asyncio.sleep(3.0)
        finally:
            await runtime.stop()
        assert (len(benefits.seen), len(commands.seen), len(notices.seen)) == counts
    await producer.stop()

    restore = commands.seen[0].restore_service
    assert restore.hours == 48
    waive = commands.seen[1].waive_charges
    assert (waive.date.month, waive.date.day) == (6, 10) and len(waive.kinds) == 3
    assert commands.seen[1].occurred_at.ToDatetime(UTC) == BIRTHDAY_START
    assert notices.seen[0].template == "birthday-free"
    assert notices.seen[1].template == "birthday-waived"
    assert notices.seen[1].params["amount_fen"] == "400"  # 150 + 250; not HMT, not the day before
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    await client.drop_database(db)
    await client.close()


async def test_views_are_rebuilt_from_the_topics_publishing_nothing(infra, tmp_path):
    """`python -m hvc.benefits rebuild-views`: the ledger entries and the tiers view, deleted
    or gone stale, are written again from the input topics as the stream wrote them, and
    nothing is published; refused while the service runs."""
    tag = uuid.uuid4().hex[:8]
    cid, name, db = f"R{tag}", f"benefits-rb-{tag}", f"it_benefits_rb_{tag}"
    settings = dict(
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
        settings=BenefitsSettings(flush_interval_seconds=0.2),
    )
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    since = await chaos.end_offsets_by_name(infra.kafka_bootstrap, INPUTS)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    suspended = accounts_pb2.AccountSuspended(reason=accounts_pb2.AccountSuspended.ARREARS)
    feed = [
        upsert(cid, f"u1-{tag}", T - dt.timedelta(days=60)),
        decided(cid, f"t1-{tag}", common_pb2.NONE, common_pb2.GOLD, T - dt.timedelta(days=30)),
        account(cid, f"s1-{tag}", T, account_suspended=suspended),
        usage(cid, f"x1-{tag}", BIRTHDAY_START + dt.timedelta(hours=2), 150),
        upsert(cid, f"u2-{tag}", BIRTHDAY_START + dt.timedelta(days=1, minutes=20)),
    ]
    mine = lambda m: m.customer_id == cid  # noqa: E731
    store: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    ledger, tiers = store[db]["ledger"], store[db]["tiers"]
    try:
        async with (
            TopicWatch(infra.kafka_bootstrap, "hvc.benefits.v1", mine) as benefits,
            TopicWatch(infra.kafka_bootstrap, "billing.commands.v1", mine) as commands,
            TopicWatch(infra.kafka_bootstrap, "hvc.notifications.v1", mine) as notices,
        ):
            runtime, _ = bootstrap(name=name, **settings)
            await runtime.start()
            try:
                for topic, m in feed:
                    await producer.send_and_wait(
                        topic, codec_for(topic).serialize(m), key=cid.encode()
                    )
                await benefits.wait_for(5)  # GOLD: 4 grants; the birthday's
                await commands.wait_for(2)  # restoration, waiver
                await notices.wait_for(2)  # birthday, amount waived
                # Refused while the service's group has a member (it has: it decided).
                refused, _ = bootstrap(name=name, **settings)
                try:
                    with pytest.raises(RuntimeError, match="stop"):
                        await refused.rebuild_views(since=since)
                finally:
                    await refused.mongo.close()
            finally:
                await runtime.stop()
            await asyncio.sleep(1.0)
            written = {d["_id"]: d for d in await ledger.find({}).to_list()}
            timeline = await tiers.find_one({"_id": cid})
            assert len(written) == 4 + 1 + 2 + 2 and timeline is not None
            counts = (len(benefits.seen), len(commands.seen), len(notices.seen))

            # Lost and stale: the whole ledger gone, the tiers view wrong.
            await ledger.delete_many({})
            await tiers.update_one({"_id": cid}, {"$set": {"timeline": {"0": "DIAMOND"}}})
            rebuilder, _ = bootstrap(name=name, **settings)
            try:
                stats = await rebuilder.rebuild_views(idle_s=5.0, since=since)
            finally:
                await rebuilder.mongo.close()
            # Its inputs since: the feed, and the service's own hvc.benefits.v1 (it reads claims)
            assert stats["records"] == len(feed) + len(benefits.seen)
            assert stats["partitions_short"] == 0
            assert {d["_id"]: d for d in await ledger.find({}).to_list()} == written
            assert await tiers.find_one({"_id": cid}) == timeline
            await asyncio.sleep(2.0)
            assert (len(benefits.seen), len(commands.seen), len(notices.seen)) == counts
    finally:
        await producer.stop()
        await store.drop_database(db)
        await store.close()
