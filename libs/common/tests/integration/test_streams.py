"""hvc.common.streams on the real broker and store, at two replicas with one killed -9 while the
feed plays: a join of two co-partitioned topics decides with the profile every time, state
survives the kill through its changelog (nothing counted twice or lost), timers fire once per
customer, views hold the state, and bad records go to the dead-letter topic."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from pymongo import AsyncMongoClient

from hvc.common.topics import wait_for_topics
from hvc.events.v1 import customers_pb2, notifications_pb2, usage_pb2

pytestmark = pytest.mark.integration
WORKER = pathlib.Path(__file__).with_name("stream_worker.py")
PARTITIONS = 4
DAY_MS = 86_400_000
T0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _partition(key: str) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


async def _create(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        keep = {"retention.ms": "-1"}  # the feed's event times are in the past
        await admin.create_topics([NewTopic(n, PARTITIONS, 1, topic_configs=keep) for n in names])
    finally:
        await admin.close()
    # The broker serves its metadata a moment after the controller has created them (a
    # second under load): a worker started before would not find its inputs.
    shown = await wait_for_topics(bootstrap, names, wait_s=30)
    assert shown == dict.fromkeys(names, PARTITIONS), shown


def _usage(cid: str, n: int, fen: int, at_ms: int) -> bytes:
    u = usage_pb2.UsageRecorded(
        event_id=f"u-{cid}-{n}", customer_id=cid, msisdn="13900000000", charged_fen=fen
    )
    u.kind = usage_pb2.UsageRecorded.DATA
    u.roaming = usage_pb2.UsageRecorded.DOMESTIC
    u.occurred_at.FromMilliseconds(at_ms)
    return u.SerializeToString()


def _profile(cid: str) -> bytes:
    p = customers_pb2.CustomerEvent(event_id=f"p-{cid}", customer_id=cid)
    p.customer_upserted.name = cid
    p.customer_upserted.manager_id = f"M-{cid}"
    p.occurred_at.FromMilliseconds(T0_MS)
    return p.SerializeToString()


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            out.extend(r for rs in batch.values() for r in rs)
        return out
    finally:
        await consumer.stop()


class Replicas:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = pathlib.Path(spec["root"])

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        spec = {**self.spec, "state_dir": str(self.logs / f"state-{n}")}
        log = (self.logs / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(spec)], stdout=log, stderr=log
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    def tails(self) -> str:
        """The end of each worker's log, without the import-time deprecation noise."""
        noise = ("AuthlibDeprecationWarning", "from ._compat import httpx2")
        return "\n".join(
            f"--- {f.name}\n"
            + "\n".join(
                line
                for line in f.read_text(errors="replace").splitlines()
                if not any(n in line for n in noise)
            )[-3000:]
            for f in sorted(self.logs.glob("worker-*.log"))
        )


async def test_two_replicas_join_co_partitioned_inputs_and_lose_nothing_to_a_kill(infra):
    run = uuid.uuid4().hex[:8]
    t = {k: f"test.streams.{run}.{k}" for k in ("profiles", "usage", "out")}
    await _create(infra.kafka_bootstrap, [*t.values(), f"{t['profiles']}.dlq", f"{t['usage']}.dlq"])
    database = f"test_streams_{run}"
    root = tempfile.mkdtemp(prefix="hvc-streams-")
    replicas = Replicas(
        {
            "bootstrap": infra.kafka_bootstrap,
            "mongo": infra.mongo_uri,
            "database": database,
            "group": f"test-streams-{run}",
            "topics": t,
            "root": root,
        }
    )
    customers = [f"C{i:04d}" for i in range(120)]
    expected: dict[str, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    db = AsyncMongoClient(infra.mongo_uri)[database]
    try:

        async def feed(part: list[str], day0: int) -> None:
            for cid in part:  # the profile is published before the customer's usage
                await producer.send(t["profiles"], _profile(cid), key=cid.encode())
            for n in range(4):
                for i, cid in enumerate(part):
                    fen = 100 + (i * 7 + n) % 50
                    at = T0_MS + (day0 + n) * DAY_MS // 2 + i * 1000
                    await producer.send(t["usage"], _usage(cid, n, fen, at), key=cid.encode())
                    expected[cid] = expected.get(cid, 0) + fen
            await producer.flush()

        a, b = replicas.start(), replicas.start()
        await feed(customers[:60], 0)
        deadline = time.monotonic() + 120
        while await db.spend.count_documents({}) < 20:  # both replicas are at work
            assert time.monotonic() < deadline, replicas.tails()
            assert a.poll() is None and b.poll() is None, replicas.tails()
            await asyncio.sleep(0.2)
        os.kill(a.pid, signal.SIGKILL)  # mid-stream, a rebalance follows
        await feed(customers[60:], 1)
        bad = customers[5]
        await producer.send(t["usage"], b"\xff not protobuf", key=bad.encode())
        await producer.send(t["usage"], _usage(bad, 99, 13, T0_MS + DAY_MS), key=bad.encode())
        replicas.start()  # a third process takes the killed one's place
        # one record per partition far ahead moves every partition's time past the reminders
        sweepers = {}
        for i in range(10_000):
            sweepers.setdefault(_partition(f"Z{i}"), f"Z{i}")
            if len(sweepers) == PARTITIONS:
                break
        for cid in sweepers.values():
            await producer.send(
                t["usage"], _usage(cid, 0, 1, T0_MS + 10 * DAY_MS), key=cid.encode()
            )
        await producer.flush()

        want = {cid: (fen, f"M-{cid}", 0, 5) for cid, fen in expected.items()}
        deadline = time.monotonic() + 180
        got: dict[str, Any] = {}
        while True:
            docs = await db.spend.find({"_id": {"$in": customers}}).to_list(None)
            got = {d["_id"]: (d["fen"], d["m"], d["without"], d["events"]) for d in docs}
            reminded = {d["_id"] for d in docs if d.get("reminded")}
            if got == want and reminded == set(customers):
                break
            wrong = {c: (got.get(c), w) for c, w in want.items() if got.get(c) != w}
            if time.monotonic() >= deadline:  # the assertion's text is cut short: the logs here
                logging.getLogger(__name__).error("workers' logs:\n%s", replicas.tails())
            assert time.monotonic() < deadline, (len(wrong), list(wrong.items())[:5])
            await asyncio.sleep(0.5)
    finally:
        replicas.stop_all()
        await producer.stop()

    # each customer's reminder went out (at least once: a kill -9 may repeat one), for the
    # first usage it saw, and nothing was decided before the customer's profile
    records = await _read_all(infra.kafka_bootstrap, t["out"])
    sent = {}
    for r in records:
        n = notifications_pb2.NotificationRequested.FromString(r.value)
        sent.setdefault(n.customer_id, set()).add(n.template)
        assert dict(r.headers)["hvc-cause"].decode().startswith(t["usage"])
    assert {c: s for c, s in sent.items() if c in want} == {c: {f"u-{c}-0"} for c in customers}
    dead = await _read_all(infra.kafka_bootstrap, f"{t['usage']}.dlq")
    reasons = {dict(r.headers)["dlq.source.offset"]: dict(r.headers)["dlq.error"] for r in dead}
    assert sorted(reasons.values()) == [b"invalid", b"invalid"], reasons
    await db.client.drop_database(database)


class _Writer:
    """Each usage record: its customer's state and view (two writes)."""

    def event_time_ms(self, topic: str, message: Any, record: Any) -> int:
        return int(message.occurred_at.ToMilliseconds())

    def handle(self, ctx: Any, topic: str, m: Any) -> None:
        st = ctx.state(m.customer_id)
        st["fen"] = st.get("fen", 0) + m.charged_fen
        ctx.view("spend", m.customer_id, {"fen": st["fen"]})

    def fire(self, ctx: Any, key: str, what: str, arg: Any) -> None:
        raise AssertionError("no timers here")


async def test_a_checkpoint_past_its_writes_is_committed_after_the_record_in_hand(infra):
    """A checkpoint interval of an hour: the views (written at a commit) and the group's
    offsets move while the stream runs only because each checkpoint that held 10 writes was
    committed after its record."""
    from hvc.common.streams import EARLY_COMMITS, EngineSettings, MongoViews, Pipeline, StreamApp

    run = uuid.uuid4().hex[:8]
    usage = f"test.streams.{run}.usage"
    await _create(infra.kafka_bootstrap, [usage, f"{usage}.dlq"])
    database, group = f"test_streams_{run}", f"test-early-{run}"
    views = MongoViews(AsyncMongoClient(infra.mongo_uri), database)
    app = StreamApp(
        Pipeline(f"early-{run}", {usage: usage_pb2.UsageRecorded}, _Writer()),
        EngineSettings(
            bootstrap_servers=infra.kafka_bootstrap,
            consumer_group=group,
            state_dir=tempfile.mkdtemp(prefix="hvc-early-"),
            commit_interval_s=3600,
            checkpoint_max_writes=10,
        ),
        views,
    )
    early = EARLY_COMMITS.labels(f"early-{run}")
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    db = AsyncMongoClient(infra.mongo_uri)[database]
    customers = [f"C{i:04d}" for i in range(40)]
    try:
        app.start()
        for i, cid in enumerate(customers):
            at = T0_MS + i * 1000
            await producer.send(usage, _usage(cid, 0, 100 + i, at), key=cid.encode())
        await producer.flush()
        deadline = time.monotonic() + 90
        while await db.spend.count_documents({}) < len(customers) - 5:
            assert time.monotonic() < deadline, app.problem()
            await asyncio.sleep(0.2)
        assert early._value.get() >= 5  # each after 5 records (10 writes) at most
        probe = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group)
        await probe.start()
        try:
            tps = [TopicPartition(usage, p) for p in range(PARTITIONS)]
            committed = [await probe.committed(tp) or 0 for tp in tps]
        finally:
            await probe.stop()
        assert sum(committed) >= len(customers) - 5 - PARTITIONS * 5
    finally:
        await asyncio.to_thread(app.stop)
        views.close()
        await producer.stop()
    docs = {d["_id"]: d["fen"] async for d in db.spend.find({})}
    assert docs == {cid: 100 + i for i, cid in enumerate(customers)}  # each once
    await db.client.drop_database(database)
