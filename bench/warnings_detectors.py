"""The warnings service's hot paths (the call and usage detectors) against the raw aiokafka
consume rate of the same topic, measured in the same run.

The parent produces a day-shaped feed (a few calls to rival service lines and forwards to
rival numbers among ordinary calls; data and other usage), reads it back with a bare
aiokafka consumer, then runs each detector in its own process (`worker`) through the real
path: hvc.common.keyed with the warnings processors, the state log and the raiser writing to
the store and the broker. Rates are records per second from assignment to the last offset
folded and flushed; peak RSS is the worker's.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import random
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hvc.common.codec import codec_for
from hvc.common.topics import ensure_topics, spec
from hvc.devinfra.pytest_plugin import start_group_at_end
from hvc.events.v1 import calls_pb2, usage_pb2

CALLS, USAGE = "network.calls.v1", "billing.usage.v1"
RESULTS = pathlib.Path(__file__).parent / "results"
PROFILE = os.environ.get("HVC_BENCH_PROFILE") == "1"  # cProfile each worker into results/
T0 = 1_740_000_000  # 2025-02-19


def calls(n: int, customers: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    codec = codec_for(CALLS)
    out = []
    for i in range(n):
        cid = f"B{rng.randrange(customers):07d}"
        m = calls_pb2.CallRecorded(
            event_id=f"bc-{i}",
            customer_id=cid,
            msisdn="13900000000",
            other_number="10010" if rng.random() < 0.01 else f"138{rng.randrange(10**8):08d}",
            direction=calls_pb2.CallRecorded.OUTGOING,
            duration_s=rng.randrange(1, 600),
        )
        m.occurred_at.FromSeconds(T0 + i * 86_400 * 30 // n)
        if rng.random() < 0.005:
            m.forwarded_to = f"189{rng.randrange(10**8):08d}"
        out.append((cid.encode(), codec.serialize(m)))
    return out


def usage(n: int, customers: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    codec = codec_for(USAGE)
    kinds = [usage_pb2.UsageRecorded.DATA] * 2 + [
        usage_pb2.UsageRecorded.VOICE,
        usage_pb2.UsageRecorded.SMS,
    ]
    out = []
    for i in range(n):
        cid = f"B{rng.randrange(customers):07d}"
        m = usage_pb2.UsageRecorded(
            event_id=f"bu-{i}",
            customer_id=cid,
            msisdn="13900000000",
            kind=rng.choice(kinds),
            roaming=usage_pb2.UsageRecorded.DOMESTIC,
            charged_fen=rng.randrange(0, 500),
            volume_bytes=rng.randrange(0, 50_000_000),
        )
        # 100 days: the monthly closes run inside the measured window.
        m.occurred_at.FromSeconds(T0 + i * 86_400 * 100 // n)
        out.append((cid.encode(), codec.serialize(m)))
    return out


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        pending = [await producer.send(topic, v, key=k) for k, v in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(spec(topic).partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def raw_rate(bootstrap: str, topic: str, start: dict[int, int], n: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in start]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        seen = 0
        t0 = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(r) for r in batch.values())
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def worker(bootstrap: str, mongo: str, topic: str, group: str, ends: dict[int, int]) -> None:
    """One detector in this process, through the service's real path; prints JSON."""
    from hvc.common.kafka import producer
    from hvc.common.keyed import KeyedStream
    from hvc.common.mongo import make_client
    from hvc.common.settings import KafkaSettings, MongoSettings
    from hvc.warnings import streams
    from hvc.warnings.assignment import Assigner
    from hvc.warnings.directory import Directory
    from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
    from hvc.warnings.raiser import Raiser
    from hvc.warnings.repository import Repository
    from hvc.warnings.settings import WarningsSettings

    client = make_client(MongoSettings(uri=mongo))
    db = client[group.replace(".", "_").replace("-", "_")]
    rules = load_rules(DEFAULT_RULES)
    async with producer(KafkaSettings(bootstrap_servers=bootstrap)) as send:
        repo = Repository(db)
        await repo.ensure_indexes()
        directory = Directory()
        raiser = Raiser(repo, rules, send, Assigner(db, rules), directory)
        lateness = WarningsSettings().usage_lateness_seconds
        procs = [
            p for p in streams.processors(raiser, 900, directory, lateness) if p.topic == topic
        ]

        async def dead(*args: Any) -> None:
            raise AssertionError(f"no dead letters expected: {args}")

        stream = KeyedStream(
            "bench",
            group,
            procs,
            db["state_log"],
            consumer_kwargs={},
            bootstrap_servers=bootstrap,
            dead_letter=dead,
        )
        await stream.start()
        while len(stream.parts) < len(ends):  # noqa: ASYNC110 - polls the consumer's state
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()

        def done() -> bool:
            return all(
                (part.flushed_offset or 0) >= ends[tp.partition]
                for tp, part in stream.parts.items()
            )

        while not done():  # noqa: ASYNC110 - polls the consumer's state
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - t0
        states = sum(len(p.states) for p in stream.parts.values())
        await stream.stop()
    raised = await db["warnings"].count_documents({})
    await client.drop_database(db.name)
    await client.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "states": states, "warnings": raised, "rss_mib": rss}))


def run(bootstrap: str, mongo: str, n_calls: int, n_usage: int, customers: int) -> dict[str, float]:
    rng = random.Random(42)
    asyncio.run(ensure_topics(bootstrap, replicas=1, specs=[spec(CALLS), spec(USAGE)]))
    figures: dict[str, float] = {}
    for topic, n, make in ((CALLS, n_calls, calls), (USAGE, n_usage, usage)):
        short = "calls" if topic == CALLS else "usage"
        group = f"bench-warnings-{short}-{uuid.uuid4().hex[:6]}"
        asyncio.run(start_group_at_end(bootstrap, group, [topic]))
        start = asyncio.run(offsets(bootstrap, topic))
        records = make(n, customers, rng)
        t0 = time.perf_counter()
        asyncio.run(produce(bootstrap, topic, records))
        print(f"warnings bench: produced {n:,} {short} records in {time.perf_counter() - t0:.1f}s")
        del records
        ends = asyncio.run(offsets(bootstrap, topic))
        raw = asyncio.run(raw_rate(bootstrap, topic, start, n))
        profile = (
            ["-m", "cProfile", "-o", str(RESULTS / f"warnings-{short}.prof")] if PROFILE else []
        )
        out = subprocess.run(
            [
                sys.executable,
                *profile,
                __file__,
                "worker",
                bootstrap,
                mongo,
                topic,
                group,
                json.dumps(ends),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        rate = n / got["seconds"]
        figures |= {
            f"warnings_{short}_raw_consume_per_s": raw,
            f"warnings_{short}_detector_per_s": rate,
            f"warnings_{short}_ratio": rate / raw,
            f"warnings_{short}_warnings": got["warnings"],
            f"warnings_{short}_worker_rss_mib": got["rss_mib"],
        }
        print(
            f"warnings bench: {short}: detector {rate:,.0f}/s vs raw {raw:,.0f}/s "
            f"({rate / raw:.2f}); {got['warnings']} warnings; RSS {got['rss_mib']:.0f} MiB"
        )
    return figures


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        _, _, kafka, uri, topic, group, ends = sys.argv
        asyncio.run(
            worker(kafka, uri, topic, group, {int(k): v for k, v in json.loads(ends).items()})
        )
