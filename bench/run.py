"""`make bench`: physical baselines of the broker and the store, printed and saved as JSON.

The services' own benchmarks are measured against these figures, in the same run.
Uses KAFKA_BOOTSTRAP / MONGO_URI when both are set, else the local instance `bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pathlib
import resource
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from hvc.common.codec import codec_for
from hvc.devinfra import local
from hvc.devinfra.samples import samples

RESULTS = pathlib.Path(__file__).parent / "results"


async def kafka_baselines(bootstrap: str, n: int) -> dict[str, float]:
    topic = f"bench.baseline.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    _, _, usage = next(s for s in samples("bench") if s[0] == "billing.usage.v1")
    value = codec_for("billing.usage.v1").serialize(usage)
    keys = [f"c{i % 10_000}".encode() for i in range(n)]
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
        )
        await producer.start()
        t0 = time.perf_counter()
        pending = [await producer.send(topic, value, key=k) for k in keys]
        await asyncio.gather(*pending)
        produce_s = time.perf_counter() - t0
        await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        seen = 0
        t0 = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(r) for r in batch.values())
        consume_s = time.perf_counter() - t0
        await consumer.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()
    return {
        "message_bytes": len(value),
        "kafka_produce_msgs_per_s": n / produce_s,
        "kafka_consume_msgs_per_s": n / consume_s,
    }


async def store_baselines(uri: str, n: int) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    docs = [{"_id": f"e{i}", "customer_id": f"c{i % 10_000}", "fen": i} for i in range(n)]
    try:
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            await db.events.insert_many(docs[i : i + 1000], ordered=False)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        read = len(await db.events.find({}).to_list())
        read_s = time.perf_counter() - t0
    finally:
        await client.drop_database(db.name)
        await client.close()
    assert read == n
    return {"store_write_docs_per_s": n / write_s, "store_read_docs_per_s": n / read_s}


def _parts(args: argparse.Namespace, kafka: str, mongo: str, figures: dict[str, float]) -> None:
    """Each part adds its figures as it finishes: a part that fails keeps the others'."""
    if args.only in (None, "baselines"):
        figures |= asyncio.run(kafka_baselines(kafka, args.messages))
        figures |= asyncio.run(store_baselines(mongo, args.documents))
    if args.only in (None, "tiering"):
        import tiering_annual

        figures |= tiering_annual.run(kafka, mongo, args.customers, args.annual_runs)
    if args.only in (None, "gateway"):
        import gateway_360

        figures |= gateway_360.run(kafka, mongo, args.gateway_customers)
    if args.only in (None, "workbench"):
        import workbench

        figures |= workbench.run(kafka, mongo, args.workbench_customers)
    if args.only in (None, "outages"):
        import outages

        figures |= outages.run(kafka, mongo, args.outage_customers)
    if args.only in (None, "engines"):
        import engine_spike

        figures |= engine_spike.run(kafka, args.engine_customers)
    if args.only in (None, "cpu"):
        import pipeline_cpu

        if "kafka_consume_msgs_per_s" not in figures:
            figures |= asyncio.run(kafka_baselines(kafka, args.messages))
        figures |= pipeline_cpu.run(
            args.cpu_customers, args.cpu_days, figures["kafka_consume_msgs_per_s"]
        )
    if args.only in (None, "store"):
        import store_backends

        figures |= store_backends.run(args.store_documents)
    if args.only in (None, "e2e"):
        import e2e

        if "kafka_consume_msgs_per_s" not in figures:
            figures |= asyncio.run(kafka_baselines(kafka, args.messages))
        e2e.run(
            figures,
            kafka,
            mongo,
            raw_consume_rate=figures["kafka_consume_msgs_per_s"],
            backlog_customers=args.backlog_customers,
            backlog_days=args.backlog_days,
            customers=args.e2e_customers,
            rate=args.e2e_rate,
            seconds=args.e2e_seconds,
            profile_s=args.profile_seconds,
            drain_cap_s=args.drain_seconds,
            service_env=dict(kv.split("=", 1) for kv in args.service_env),
            replicas={s: int(n) for s, n in (kv.split("=", 1) for kv in args.e2e_replicas)},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument(
        "--customers",
        type=int,
        default=100_000,
        help="tiering population (1,000,000: ~30 min with --annual-runs 1)",
    )
    parser.add_argument("--annual-runs", type=int, default=2, choices=[1, 2])
    parser.add_argument(
        "--gateway-customers", type=int, default=100_000, help="gateway: tiering population"
    )
    parser.add_argument(
        "--workbench-customers", type=int, default=100_000, help="workbench reads: population"
    )
    parser.add_argument(
        "--outage-customers", type=int, default=100_000, help="outage notices: population"
    )
    parser.add_argument("--e2e-rate", type=float, default=2000, help="offered events/s")
    parser.add_argument(
        "--e2e-seconds", type=float, default=300, help="offered load's length (0: skip)"
    )
    parser.add_argument("--e2e-customers", type=int, default=10_000, help="feed's population")
    parser.add_argument(
        "--e2e-replicas",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="fixed load: N processes of SERVICE in its group, as the prod overlay's replicas "
        "(repeatable; 1 each by default)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="e2e: a setting every service starts with (repeatable; HVC_STREAM_..., say)",
    )
    parser.add_argument(
        "--backlog-customers", type=int, default=100_000, help="each service alone (0: skip)"
    )
    parser.add_argument("--backlog-days", type=int, default=3)
    parser.add_argument(
        "--drain-seconds", type=float, default=300, help="backlog: at most this per service"
    )
    parser.add_argument("--profile-seconds", type=float, default=20, help="py-spy (0: skip)")
    parser.add_argument(
        "--store-documents", type=int, default=20_000, help="store backends: documents"
    )
    parser.add_argument(
        "--engine-customers", type=int, default=20_000, help="engine spike: population"
    )
    parser.add_argument(
        "--cpu-customers", type=int, default=20_000, help="pipelines' own CPU: population"
    )
    parser.add_argument("--cpu-days", type=int, default=3, help="pipelines' own CPU: days")
    parts = [
        "baselines",
        "tiering",
        "gateway",
        "workbench",
        "outages",
        "engines",
        "cpu",
        "store",
        "e2e",
    ]
    parser.add_argument("--only", choices=parts, help="run one part")
    args = parser.parse_args()

    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP"), os.environ.get("MONGO_URI")
    started: list[str] = []
    inst = local.Instance.named("bench")
    if not (kafka and mongo):
        started = [n for n in ("kafka", "ferretdb") if local.running_pid(inst, n) is None]
        local.fetch(inst)
        local.up(inst)
        kafka, mongo = inst.kafka_bootstrap, inst.mongo_uri
    figures: dict[str, float] = {}
    try:
        _parts(args, kafka, mongo, figures)
    finally:
        for name in ("ferretdb", "kafka"):
            if name in started:
                local.stop(inst, name)
        _report(args, figures)  # what the parts measured, even when one failed


def _report(args: argparse.Namespace, figures: dict[str, float]) -> None:
    figures["bench_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'figure':<34}{'value':>14}")
    for name, value in figures.items():
        shown = f"{value:>14,.2f}" if not value >= 10 else f"{value:>14,.0f}"
        print(f"{name:<34}{shown}")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"baselines-{stamp}.json"
    run = {
        "at": stamp,
        "messages": args.messages,
        "documents": args.documents,
        "customers": args.customers,
    }
    out.write_text(json.dumps(run | {"figures": figures}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
