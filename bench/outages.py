"""Proactive notices at 100,000 customers (default): an outage of 500 cells resolved to its
customers (DOMAIN §6, issue 22: <= 2 s).

The warnings service runs as a process; the simulator's customers (home cells and area,
about 25 customers a cell) and a tier for each are published and drained first (the profiles
and the cell index are then in the pipeline's state, per partition). Then one unplanned
outage of 500 cells (one area's) is published on network.outages.v1, twice more (it is
timed three times, each a new outage id). Figures: from its publication to the first and to
the last of its notices on hvc.notifications.v1 (every high-value customer of those cells,
the count checked against the population), i.e. the fan-out to every partition, each
partition's lookup of its cells and the notices written. Each outage is published once the
pipeline has committed the one before (its contact-history writes done).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hvc.common.codec import codec_for
from hvc.common.topics import OUTAGES, spec
from hvc.devinfra import chaos, local
from hvc.events.v1 import common_pb2, outages_pb2, tiering_pb2
from hvc.simulator.world import Options, World

DBS = {"warnings": "bench_notices_warnings"}
HELD = (common_pb2.DIAMOND, common_pb2.PLATINUM, common_pb2.GOLD, common_pb2.SILVER, common_pb2.VIP)
NOTIFICATIONS = "hvc.notifications.v1"


async def publish_population(kafka: str, world: World) -> dict[str, bool]:
    """Each customer's profile and a tier decision (a third of them high-value); returns
    whether each customer is high-value."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    held: dict[str, bool] = {}
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    try:
        pending = []
        for i, c in enumerate(world.customers):
            topic, key, m = world._profile(c, at)
            pending.append(
                await producer.send(topic, codec_for(topic).serialize(m), key=key.encode())
            )
            tier = HELD[i % 5] if i % 3 == 0 else common_pb2.NONE
            held[c.customer_id] = tier != common_pb2.NONE
            d = tiering_pb2.TierDecided(
                event_id=f"bench-t-{c.customer_id}",
                customer_id=c.customer_id,
                old_tier=common_pb2.NONE,
                new_tier=tier,
                source=tiering_pb2.TierDecided.ANNUAL,
                ruleset_version="bench",
            )
            d.occurred_at.FromDatetime(at)
            d.effective_from.FromDatetime(at)
            topic = "hvc.tier-decisions.v1"
            pending.append(
                await producer.send(topic, codec_for(topic).serialize(d), key=key.encode())
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return held


async def one_outage(kafka: str, cells: list[str], expected: int) -> tuple[float, float, int]:
    """Publish an unplanned outage of `cells`; seconds to its first and last notice."""
    oid = f"BENCH-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await consumer.start()
    tps = [TopicPartition(NOTIFICATIONS, p) for p in range(spec(NOTIFICATIONS).partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    m = outages_pb2.OutageEvent(event_id=f"{oid}-a", outage_id=oid)
    now = dt.datetime.now(dt.UTC)
    m.occurred_at.FromDatetime(now)
    a = m.outage_announced
    a.outage_id, a.kind = oid, outages_pb2.OutageAnnounced.UNPLANNED
    a.services.append("VOICE")
    a.cell_ids.extend(cells)
    a.starts_at.FromDatetime(now)
    codec = codec_for(NOTIFICATIONS)
    prefix = f"notice|{oid}|"
    seen, first = 0, float("nan")
    try:
        t0 = time.perf_counter()
        await producer.send_and_wait(OUTAGES, codec_for(OUTAGES).serialize(m), key=oid.encode())
        while seen < expected and time.perf_counter() - t0 < 120:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for r in records:
                    if codec.deserialize(r.value).event_id.startswith(prefix):
                        if seen == 0:
                            first = time.perf_counter() - t0
                        seen += 1
        last = time.perf_counter() - t0
    finally:
        await producer.stop()
        await consumer.stop()
    return first, last, seen


def run(kafka: str, mongo: str, customers: int) -> dict[str, Any]:
    world = World(Options(customers=customers, seed=42))
    area = "0755"
    cells = sorted({cell for c in world.customers if c.area == area for cell in c.home_cells})[:500]
    inst = local.Instance.named("bench")
    asyncio.run(chaos.drop_databases(mongo, DBS.values()))
    asyncio.run(chaos.groups_at_end(kafka, ("warnings",), databases=DBS))
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "MONGO_URI": mongo, "HVC_LOG_LEVEL": "WARNING"}
    local.start_service(
        inst, "warnings", env_overrides={**env, **chaos.service_env("warnings", DBS)}
    )
    try:
        local.wait_ready(inst, "warnings", timeout_s=180)
        t0 = time.perf_counter()
        held = asyncio.run(publish_population(kafka, world))
        drained = asyncio.run(chaos.wait_no_lag(kafka, ("warnings",), 900, DBS))
        load_s = time.perf_counter() - t0
        chosen = set(cells)
        expected = sum(
            1 for c in world.customers if held[c.customer_id] and chosen & set(c.home_cells)
        )
        print(
            f"outages: {customers:,} customers' profiles and tiers in the warnings pipeline in "
            f"{load_s:.0f}s (drained {drained:.0f}s after the last publish)"
        )
        runs = []
        for _ in range(3):
            runs.append(asyncio.run(one_outage(kafka, cells, expected)))
            # Each outage on a pipeline that has finished the last one: its offsets committed,
            # so its checkpoint (the contact history's inserts) is behind it. Back to back,
            # the next outage waited for those writes (runs 2 and 3 took a second more).
            asyncio.run(chaos.wait_no_lag(kafka, ("warnings",), 300, DBS))
    finally:
        local.stop(inst, "warnings")
    lasts = sorted(r[1] for r in runs)
    for first, last, seen in runs:
        print(
            f"outages: an outage of {len(cells)} cells over {customers:,} customers: first notice "
            f"after {first:.2f}s, all {seen:,} of {expected:,} after {last:.2f}s (target <= 2 s)"
        )
    return {
        "outage_customers": customers,
        "outage_cells": len(cells),
        "outage_notices": expected,
        "outage_all_notices_s_median": lasts[1],
        "outage_all_notices_s_max": lasts[-1],
        "outage_first_notice_s_median": sorted(r[0] for r in runs)[1],
        "outage_notices_missing": sum(expected - r[2] for r in runs),
    }
