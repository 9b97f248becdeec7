"""Poison and garbage on every inbound topic, into the four stream services running as
processes against the real broker and store: every refused message lands once in its topic's
DLQ, per consuming service, with a reason; the valid events after it (for customers nobody has
seen) are taken, not dead-lettered; and every consumer group's lag returns to zero. A value
too large for a dead letter (10 MB) keeps its head, size and digest there; the whole of it
stays in its source topic at the coordinates the letter names."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hvc.common.dlq import (
    HEADER_CONSUMER,
    HEADER_OFFSET,
    HEADER_REASON,
    HEADER_TOPIC,
    HEADER_TRUNCATED,
    dlq_topic,
)
from hvc.common.topics import spec
from hvc.devinfra import chaos, local

pytestmark = pytest.mark.e2e
SERVICES = chaos.STREAM_SERVICES


@pytest.fixture(scope="module")
def platform(infra):
    inst = local.attached("chaos", int(os.environ.get("HVC_CHAOS_HTTP_PORT", "18280")))
    tag = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MONGO_URI": infra.mongo_uri,
        "HVC_LOG_LEVEL": "WARNING",
    }
    dbs = {s: f"chaos_{s}_{tag}" for s in SERVICES}
    asyncio.run(chaos.groups_at_end(infra.kafka_bootstrap, SERVICES, dbs))
    try:
        for s in SERVICES:
            local.start_service(inst, s, env_overrides={**env, **chaos.service_env(s, dbs)})
        for s in SERVICES:
            local.wait_ready(inst, s, timeout_s=120)
        yield inst, dbs
    finally:
        for s in SERVICES:
            local.stop(inst, s)


async def _ends(kafka: str, topics: list[str]) -> dict[TopicPartition, int]:
    probe = AIOKafkaConsumer(bootstrap_servers=kafka)
    await probe.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(spec(t).partitions)]
        return await probe.end_offsets(tps)
    finally:
        await probe.stop()


async def _letters(kafka: str, since: dict[TopicPartition, int], want: int, within: float):
    """The dead letters written after `since`: wait for `want`, then a little more for any
    duplicate that would come late."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    out = []
    try:
        consumer.assign(list(since))
        for tp, off in since.items():
            consumer.seek(tp, off)
        deadline = time.monotonic() + within
        quiet_until = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    out.append({k: v.decode() for k, v in r.headers})
            if len(out) >= want and quiet_until is None:
                quiet_until = time.monotonic() + 5
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
        return out
    finally:
        await consumer.stop()


async def test_poison_on_every_inbound_topic_is_dead_lettered_once_and_the_services_go_on(
    platform, infra, chaos_report
):
    kafka = infra.kafka_bootstrap
    tag = uuid.uuid4().hex[:8]
    inbound = chaos.consumers(SERVICES)
    dlq_since = await _ends(kafka, [dlq_topic(t) for t in inbound])
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", max_request_size=16 << 20)
    await producer.start()
    offered: dict[str, dict[int, str]] = {}  # topic -> {offset: poison name}
    valid_offsets: dict[str, set[int]] = {}
    try:
        for topic in inbound:
            key = f"P{tag}".encode()  # one key: the poison and the valid events share a partition
            offered[topic] = {}
            for p in chaos.poison_set(topic, f"p{tag}"):
                meta = await producer.send_and_wait(topic, p.value, key=key)
                offered[topic][meta.offset] = p.name
            valid_offsets[topic] = set()
            for m in chaos.valid(topic, f"v{tag}", f"P{tag}"):
                meta = await producer.send_and_wait(topic, m.SerializeToString(), key=key)
                valid_offsets[topic].add(meta.offset)
    finally:
        await producer.stop()
    recovery = await chaos.wait_no_lag(kafka, SERVICES, within_s=240, databases=platform[1])

    expected = sum(len(offered[t]) * len(inbound[t]) for t in inbound)
    letters = await _letters(kafka, dlq_since, expected, within=120)
    rows = []
    for topic, services in inbound.items():
        for service in services:
            mine = [x for x in letters if (x[HEADER_TOPIC], x[HEADER_CONSUMER]) == (topic, service)]
            assert all(x[HEADER_REASON] for x in mine)
            big = [x for x in mine if offered[topic].get(int(x[HEADER_OFFSET])) == "ten-megabytes"]
            assert [x.get(HEADER_TRUNCATED) for x in big] == [str(10 << 20)]
            offsets = [int(x[HEADER_OFFSET]) for x in mine]
            poison = [o for o in offsets if o in offered[topic]]
            rows.append(
                {
                    "scenario": "poison",
                    "where": f"{topic} -> {service}",
                    "offered": len(offered[topic]) + len(valid_offsets[topic]),
                    "expected": len(offered[topic]),
                    "found": len(set(poison)),
                    "lost": len(set(offered[topic]) - set(poison)),
                    "duplicated": len(poison) - len(set(poison)),
                    "valid_dead_lettered": len([o for o in offsets if o in valid_offsets[topic]]),
                    "recovery_s": round(recovery, 1),
                }
            )
    chaos_report.extend(rows)
    for r in rows:
        assert (r["lost"], r["duplicated"], r["valid_dead_lettered"]) == (0, 0, 0), r
