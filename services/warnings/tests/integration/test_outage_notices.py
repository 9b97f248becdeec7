"""Proactive notices through the real broker and store: customers of every partition, one
outage on network.outages.v1 (keyed by its id, so it lands in one partition), copied to every
partition; each tells its own high-value customers in the outage's cells, once, and the
outage's report sums the partitions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.topics import OUTAGES
from hvc.devinfra.pytest_plugin import TopicWatch, start_group_at_end
from hvc.events.v1 import common_pb2, customers_pb2, outages_pb2, tiering_pb2
from hvc.warnings.assignment import Assigner
from hvc.warnings.bootstrap import bootstrap
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.pipeline import INPUTS
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository

pytestmark = pytest.mark.integration
UTC = dt.UTC
T0 = dt.datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
N = 36  # customers: three per partition on average, in every partition with near certainty


async def test_an_outage_reaches_the_high_value_customers_of_every_partition_once(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    name, db = f"notices-it-{tag}", f"it_notices_{tag}"
    cell, oid = f"CELL{tag}", f"OUT{tag}"
    settings: dict[str, Any] = dict(
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri, database=db),
    )
    cids = [f"N{tag}{i:02d}" for i in range(N)]
    gold = set(cids[: N - 6])  # the last six are not in the programme: not told
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(topic: str, key: str, m: Any) -> None:
        await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=key.encode())

    await start_group_at_end(infra.kafka_bootstrap, stream_group(name, db), INPUTS)
    ours = f"notice|{oid}|"
    async with TopicWatch(
        infra.kafka_bootstrap, "hvc.notifications.v1", lambda m: m.event_id.startswith(ours)
    ) as watch:
        runtime, _ = bootstrap(name=name, **settings)
        await runtime.start()
        try:
            for cid in cids:
                p = customers_pb2.CustomerEvent(event_id=f"p-{cid}", customer_id=cid)
                p.occurred_at.FromDatetime(T0 - dt.timedelta(days=30))
                u = p.customer_upserted
                u.name, u.do_not_disturb = "客户", cid.endswith("1")  # DND: told anyway (voice)
                u.home_cell_ids.append(cell)
                await send("crm.customers.v1", cid, p)
                d = tiering_pb2.TierDecided(
                    event_id=f"t-{cid}",
                    customer_id=cid,
                    old_tier=common_pb2.NONE,
                    new_tier=common_pb2.GOLD if cid in gold else common_pb2.NONE,
                    source=tiering_pb2.TierDecided.ANNUAL,
                )
                d.occurred_at.FromDatetime(T0 - dt.timedelta(days=30))
                d.effective_from.FromDatetime(T0 - dt.timedelta(days=30))
                await send("hvc.tier-decisions.v1", cid, d)
            o = outages_pb2.OutageEvent(event_id=f"a-{oid}", outage_id=oid)
            o.occurred_at.FromDatetime(T0)
            a = o.outage_announced
            a.outage_id, a.kind = oid, outages_pb2.OutageAnnounced.UNPLANNED
            a.services.append("VOICE")
            a.cell_ids.append(cell)
            a.starts_at.FromDatetime(T0)
            await asyncio.sleep(3.0)  # the profiles are in before the outage (other partitions)
            await send(OUTAGES, oid, o)
            await send(OUTAGES, oid, o)  # redelivered upstream: still one notice each
            seen = await watch.wait_for(len(gold), within=60)
            await asyncio.sleep(2.0)
            assert sorted(m.customer_id for m in watch.seen) == sorted(gold)
            assert len({m.event_id for m in watch.seen}) == len(watch.seen) == len(gold)
            assert {m.template for m in seen} == {"outage-unplanned"}
            assert all("语音业务" in m.params["text"] for m in seen)

            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri)
            reports = Reports(
                Repository(client[db]), Assigner(client[db], load_rules(DEFAULT_RULES))
            )
            for _ in range(100):
                report = await reports.outage(oid)
                if report and report["sent"] == len(gold):
                    break
                await asyncio.sleep(0.2)
            assert report is not None
            assert (report["affected"], report["sent"], report["partitions"]) == (
                len(gold),
                len(gold),
                12,
            )
            assert report["phases"]["started"]["sent"] == len(gold)
            contacts = await client[db]["contacts"].count_documents({"outage_id": oid})
            assert contacts == len(gold)
            listed = await reports.outages(10)
            assert [i["outage_id"] for i in listed["items"]] == [oid]
            await client.close()
        finally:
            await runtime.stop()
            await producer.stop()
