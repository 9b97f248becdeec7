"""A poison message lands in its DLQ with the reasons, and the next good message is handled: a
service's pipeline on the stream engine, through the service runtime, on the real broker."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hvc.common.codec import codec_for
from hvc.common.service import ServiceRuntime, stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.devinfra.samples import samples

pytestmark = pytest.mark.integration

TOPIC = "billing.accounts.v1"


async def test_poison_goes_to_dlq_with_reasons_and_the_stream_goes_on(infra, tmp_path):
    tag = uuid.uuid4().hex[:8]
    key = f"dlq-{tag}".encode()
    _, _, good = next(s for s in samples(f"good-{tag}") if s[0] == TOPIC)
    bad_enum = codec_for(TOPIC).message_type()
    bad_enum.CopyFrom(good)
    bad_enum.event_id = f"enum-{tag}"
    bad_enum.account_suspended.reason = 42
    poison = [b"\x0a\xff\xff\xff garbage", codec_for(TOPIC).serialize(bad_enum)]

    handled: list[str] = []
    seen_good = threading.Event()

    class Handler:  # what the pipeline hands over, kept (the engine's thread)
        def event_time_ms(self, topic, message, record):
            return int(message.occurred_at.ToMilliseconds())

        def handle(self, ctx, topic, message):
            handled.append(message.event_id)
            if message.event_id == good.event_id:
                seen_good.set()

        def fire(self, ctx, key, what, arg):
            raise AssertionError("no timers here")

    name = f"dlqtest-{tag}"
    runtime = ServiceRuntime(
        name,
        hvc=HvcSettings(data_dir=str(tmp_path)),
        kafka=KafkaSettings(bootstrap_servers=infra.kafka_bootstrap),
        mongo=MongoSettings(uri=infra.mongo_uri),
    )
    runtime.stream(Pipeline.of(name, [TOPIC], Handler()))

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    await start_group_at_end(infra.kafka_bootstrap, stream_group(name), [TOPIC])
    await runtime.start()
    try:
        offsets = []
        for value in [*poison, codec_for(TOPIC).serialize(good)]:
            md = await producer.send_and_wait(TOPIC, value, key=key)
            offsets.append((md.partition, md.offset))
        assert await asyncio.to_thread(seen_good.wait, 90)
        ok, checks = await runtime.readiness.run()
        assert ok, checks
    finally:
        await producer.stop()
        await runtime.stop()
    assert handled.count(good.event_id) == 1
    assert bad_enum.event_id not in handled

    dead = await _dead_letters_for(infra.kafka_bootstrap, TOPIC + ".dlq", key, len(poison))
    assert [d["value"] for d in dead] == poison
    for (partition, offset), d in zip(offsets, dead, strict=False):
        h = d["headers"]
        assert h["dlq.source.topic"] == TOPIC.encode()
        assert h["dlq.source.partition"] == str(partition).encode()
        assert h["dlq.source.offset"] == str(offset).encode()
        assert h["dlq.consumer"] == f"dlqtest-{tag}".encode()
        assert h["dlq.error"] == b"invalid"
    assert b"undecodable" in dead[0]["headers"]["dlq.reason"]
    assert b"unknown Reason value 42" in dead[1]["headers"]["dlq.reason"]


async def _dead_letters_for(bootstrap, topic, key, want):
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found = []
    try:
        async with asyncio.timeout(30):
            while len(found) < want:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        if r.key == key:
                            found.append({"value": r.value, "headers": dict(r.headers)})
    finally:
        await consumer.stop()
    return found
