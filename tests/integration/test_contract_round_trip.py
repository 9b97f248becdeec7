"""Every contract message goes through the real broker and comes back equal."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hvc.common.codec import codec_for, key_serializer
from hvc.devinfra.samples import samples

pytestmark = pytest.mark.integration


async def test_every_contract_message_round_trips_through_the_broker(infra):
    tag = f"rt-{uuid.uuid4().hex[:8]}"
    cases = samples(tag)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, key_serializer=key_serializer, acks="all"
    )
    await producer.start()
    try:
        sent = []
        for topic, kind, msg in cases:
            # An outage is keyed by its id; the clock's ticks have no key.
            key = getattr(msg, "customer_id", None) or getattr(msg, "outage_id", None)
            md = await producer.send_and_wait(topic, codec_for(topic).serialize(msg), key=key)
            sent.append((topic, kind, msg, md.partition, md.offset))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for topic, kind, msg, partition, offset in sent:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            record = await consumer.getone()
            key = getattr(msg, "customer_id", None) or getattr(msg, "outage_id", None)
            assert record.key == (key.encode() if key is not None else None)
            assert codec_for(topic).deserialize(record.value) == msg, f"{topic}:{kind}"
    finally:
        await consumer.stop()
    # Every kind of every topic (hvc.tiering-commands.v1: 5; the outages and their fan-out: 2
    # each; the staff notifications, the group signals and the group files: 1 each).
    assert len(sent) == 39
