"""hvc.common.keyed against the real broker and store: state and offsets move together, a
restart resumes exactly where the state log says (no event counted twice or lost), poison goes
to the dead-letter topic while the stream goes on, and the log loads only complete commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.common.keyed import Effect, KeyedStream, Meta, State, StateLog
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.events.v1 import usage_pb2

pytestmark = pytest.mark.integration
TOPIC = "billing.usage.v1"


class Summer:
    """Sums volume per customer, counting each record it applies."""

    topic = TOPIC
    message = usage_pb2.UsageRecorded

    def __init__(self) -> None:
        self.applied = 0
        self.closes: list[tuple[int, int]] = []

    def key(self, event: Any) -> str | None:
        return str(event.customer_id)

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        if event.volume_bytes == 999:
            raise KeyError("a rule that cannot take this event")
        self.applied += 1
        state["v"] = state.get("v", 0) + event.volume_bytes
        return ()

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Effect]:
        self.closes.append((before, after))
        return ()


def usage(cid: str, i: int) -> bytes:
    m = usage_pb2.UsageRecorded(
        event_id=f"{cid}-{i}",
        customer_id=cid,
        msisdn="13900000000",
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=usage_pb2.UsageRecorded.DOMESTIC,
        volume_bytes=i,
    )
    m.occurred_at.FromSeconds(1_740_000_000 + i * 3600)
    return codec_for(TOPIC).serialize(m)


def _stream(infra, group, proc, coll, dead_letter) -> KeyedStream:
    return KeyedStream(
        "it",
        group,
        [proc],
        coll,
        consumer_kwargs={},
        bootstrap_servers=infra.kafka_bootstrap,
        dead_letter=dead_letter,
        flush_interval_s=0.2,
    )


async def _until(cond, within=30.0):
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110 - polls state another task changes
            await asyncio.sleep(0.05)


async def test_state_and_offsets_survive_a_restart_and_poison_is_dead_lettered(infra):
    tag = uuid.uuid4().hex[:8]
    group, cid = f"keyed-it-{tag}", f"K{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    coll = client[f"it_keyed_{tag}"]["state_log"]
    dead: list[tuple[int, str]] = []

    async def dead_letter(meta, key, value, reason, error):
        dead.append((meta.offset, reason))

    def stream(proc: Summer) -> KeyedStream:
        return _stream(infra, group, proc, coll, dead_letter)

    until = _until

    await start_group_at_end(infra.kafka_bootstrap, group, [TOPIC])
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        first = Summer()
        s1 = stream(first)
        await s1.start()
        await until(lambda: s1.parts)  # assigned
        for i in range(1, 6):
            await producer.send_and_wait(TOPIC, usage(cid, i), key=cid.encode())
        await producer.send_and_wait(TOPIC, b"\xff\x00garbage", key=cid.encode())
        await producer.send_and_wait(TOPIC, usage(cid, 999), key=cid.encode())
        await producer.send_and_wait(TOPIC, usage(cid, 6), key=cid.encode())
        await until(lambda: first.applied == 6)
        assert len(dead) == 2 and dead[0][1] and "KeyError" in dead[1][1]
        assert len(first.closes) == 5  # the watermark moved with each later good event
        await s1.stop()

        # A new process: the state log gives the state and where to resume; nothing is
        # applied twice, and new events add to the restored sum.
        second = Summer()
        s2 = stream(second)
        await s2.start()
        await until(lambda: s2.parts)
        # The store took part of a flush and went away before it answered: a chunk under the
        # next sequence number is there already. The flush must not be refused forever.
        tp, part = next((tp, p) for tp, p in s2.parts.items() if cid in p.states)
        orphan = f"{TOPIC}|{tp.partition:04d}|{part.next_seq:012d}|000000"
        await coll.insert_one({"_id": orphan, "s": [{"k": cid, "v": {"v": -1}}]})
        await producer.send_and_wait(TOPIC, usage(cid, 7), key=cid.encode())
        await until(lambda: second.applied == 1)
        states = {k: v for part in s2.parts.values() for k, v in part.states.items()}
        assert states[cid] == {"v": sum(range(1, 8))}
        await until(lambda: part.flushed_offset == part.next_offset, within=10)
        assert s2.blocked_by is None
        await s2.stop()
        assert len(dead) == 2
        # What the log gives the next owner: event 7 included, the orphan chunk not.
        loaded = (await StateLog(coll).load_many(TOPIC, [tp.partition]))[tp.partition]
        assert loaded.states[cid] == {"v": sum(range(1, 8))}
    finally:
        await producer.stop()
        await client.drop_database(f"it_keyed_{tag}")
        await client.close()


async def test_the_log_loads_complete_commits_and_compacts_into_snapshots(infra):
    tag = uuid.uuid4().hex[:8]
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    log = StateLog(client[f"it_log_{tag}"]["state_log"])
    try:
        await log.append("t", 3, 0, [("a", {"n": 1}), ("b", {"n": 1})], offset=10, watermark=5)
        await log.append("t", 3, 1, [("a", {"n": 2}), ("b", None)], offset=20, watermark=6)
        # A flush that died after its chunks, before its commit: ignored.
        await log.coll.insert_one({"_id": "t|0003|000000000002|000000", "s": [{"k": "a", "v": 9}]})
        await log.append("t", 4, 0, [("z", {"n": 1})], offset=1, watermark=1)  # another partition
        loaded = (await log.load_many("t", [3]))[3]
        assert (loaded.states, loaded.offset, loaded.watermark) == ({"a": {"n": 2}}, 20, 6)
        assert loaded.next_seq == 3  # past the incomplete one
        big = [(f"c{i}", {"n": i}) for i in range(4500)]  # three chunks
        await log.append("t", 3, 3, big, offset=30, watermark=7, snapshot=True)
        await log.drop_before("t", 3, 3)
        loaded = (await log.load_many("t", [3]))[3]
        assert loaded.states == dict(big) and loaded.offset == 30
        assert loaded.commits_since_snapshot == 0
        assert await log.coll.count_documents({}) == 4 + 2  # 3 chunks + commit; partition 4
    finally:
        await client.drop_database(f"it_log_{tag}")
        await client.close()


async def test_no_stream_applies_records_before_its_peers_have_loaded(infra):
    """The keyed streams of one service share in-memory indexes: after a start, a stream
    holds its records (and says so in readiness) until every peer has loaded its first
    assignment."""
    tag = uuid.uuid4().hex[:8]
    cid = f"P{tag}"
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    coll = client[f"it_peers_{tag}"]["state_log"]

    async def dead_letter(meta, key, value, reason, error):
        raise AssertionError(reason)

    def stream(group: str, proc: Summer) -> KeyedStream:
        return _stream(infra, group, proc, coll, dead_letter)

    until = _until

    first, second = Summer(), Summer()
    a, b = stream(f"peers-a-{tag}", first), stream(f"peers-b-{tag}", second)
    a.peers = b.peers = [a, b]
    for s in (a, b):
        await start_group_at_end(infra.kafka_bootstrap, s.group_id, [TOPIC])
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await a.start()
        await until(lambda: a.parts)
        await producer.send_and_wait(TOPIC, usage(cid, 1), key=cid.encode())
        await asyncio.sleep(1.5)
        assert first.applied == 0
        assert f"waiting for the first assignment of {TOPIC}" == a.ready_problem()
        await b.start()
        await until(lambda: first.applied == 1 and second.applied == 1)
        assert a.ready_problem() is None and b.ready_problem() is None
    finally:
        await a.stop()
        await b.stop()
        await producer.stop()
        await client.drop_database(f"it_peers_{tag}")
        await client.close()
