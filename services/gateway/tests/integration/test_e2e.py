"""End to end through the real stack: a complaint filed by an upstream channel on
care.complaints.v1, and one filed through the gateway, become visible through the gateway
(broker -> complaints service -> store -> gateway), for the staff and for the customer."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common import topics
from hvc.common.codec import codec_for
from hvc.common.service import stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.complaints.bootstrap import bootstrap as complaints_bootstrap
from hvc.complaints.pipeline import INPUTS
from hvc.complaints.settings import ComplaintsSettings
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.events.v1 import care_pb2
from hvc.gateway.auth import mint
from hvc.gateway.bootstrap import bootstrap
from hvc.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


async def test_an_upstream_complaint_is_visible_through_the_gateway(
    infra, tmp_path, stand_ins, serve_here
):
    tag = uuid.uuid4().hex[:8]
    cid = f"E{tag}"
    kafka = KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)
    hvc = HvcSettings(data_dir=str(tmp_path))
    cname, cdb, gdb = f"complaints-e2e-{tag}", f"it_e2e_c_{tag}", f"it_e2e_g_{tag}"
    await start_group_at_end(
        infra.kafka_bootstrap, stream_group(cname, cdb), [*INPUTS, topics.CLOCK]
    )
    # No tiering here: a group of its own at the ends of tiering's inputs stands for one that
    # has decided on everything (a filing waits for tiering, hvc.complaints.frontier).
    tiering = ComplaintsSettings(tiering_group=f"tiering-e2e-{tag}")
    await start_group_at_end(infra.kafka_bootstrap, tiering.tiering_group, tiering.tiering_inputs)
    complaints, capi = complaints_bootstrap(
        name=cname,
        hvc=hvc,
        kafka=kafka,
        mongo=MongoSettings(uri=infra.mongo_uri, database=cdb),
        settings=tiering,
    )
    served = serve_here(capi)  # the real complaints API, on this loop
    complaints_url = await served.__aenter__()
    gw = GatewaySettings(dev_mode=True, **{**stand_ins, "complaints_url": complaints_url})
    gateway, gapi = bootstrap(
        name=f"gateway-e2e-{tag}",
        hvc=hvc,
        kafka=kafka,
        mongo=MongoSettings(uri=infra.mongo_uri, database=gdb),
        settings=gw,
    )
    agent = {"Authorization": f"Bearer {mint(gw, role='agent', sub='a1')}"}
    me = {"Authorization": f"Bearer {mint(gw, role='customer', sub='app', customer_id=cid)}"}
    other = {"Authorization": f"Bearer {mint(gw, role='customer', sub='x', customer_id='Z1')}"}
    await complaints.start()
    await gateway.start()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        m = care_pb2.ComplaintEvent(event_id=f"up-{tag}", customer_id=cid)
        m.occurred_at.FromDatetime(dt.datetime.now(dt.UTC))
        m.complaint_filed.complaint_id = f"UP-{tag}"
        m.complaint_filed.channel = care_pb2.ComplaintFiled.MIIT
        m.complaint_filed.category = "billing"
        m.complaint_filed.text = "charged twice"
        m.complaint_filed.filed_at.CopyFrom(m.occurred_at)
        topic = "care.complaints.v1"
        await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=cid.encode())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gapi), base_url="http://gw"
        ) as http:
            filed = await http.post(
                "/v1/complaints",
                headers={**me, "Idempotency-Key": "app-0001"},
                json={
                    "customer_id": cid,
                    "channel": "APP_WEB",
                    "category": "network",
                    "text": "no signal",
                },
            )
            assert filed.status_code == 202, filed.text
            again = await http.post(
                "/v1/complaints",
                headers={**me, "Idempotency-Key": "app-0001"},
                json={
                    "customer_id": cid,
                    "channel": "APP_WEB",
                    "category": "network",
                    "text": "no signal",
                },
            )
            assert again.json()["id"] == filed.json()["id"]
            ids = {f"UP-{tag}", filed.json()["id"]}
            async with asyncio.timeout(60):
                while True:
                    listing = await http.get(
                        "/v1/complaints", params={"customer_id": cid}, headers=agent
                    )
                    if {c["id"] for c in listing.json()["items"]} == ids:
                        break
                    await asyncio.sleep(0.2)
            up = (await http.get(f"/v1/complaints/UP-{tag}", headers=agent)).json()
            assert up["severity"] == "critical" and up["channel"] == {"name": "MIIT"}
            assert up["sla"]["targets"]["first_response_minutes"] == 240  # the regulator's
            mine = await http.get(f"/v1/complaints/UP-{tag}", headers=me)
            assert mine.status_code == 200
            theirs = await http.get(f"/v1/complaints/UP-{tag}", headers=other)
            assert theirs.status_code == 404 and "charged" not in theirs.text
            assert listing.json()["total"] == 2  # the replayed filing made no second complaint
    finally:
        await producer.stop()
        await gateway.stop()
        await served.__aexit__(None, None, None)
        await complaints.stop()
        client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
        await client.drop_database(cdb)
        await client.drop_database(gdb)
        await client.close()
