"""Session fixtures: a real Kafka bootstrap address and a real MongoDB URI for the suite.

Where from, in order: KAFKA_BOOTSTRAP / MONGO_URI when set; testcontainers where a Docker
engine answers; otherwise the project's own local broker and store (instance `test`), started
here if they are not running and stopped at the end if this session started them.
Integration tests never skip for want of Docker.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hvc.devinfra import local

log = logging.getLogger("hvc.devinfra.fixtures")

# What the suite ran against, printed at the end of every run (see pytest_terminal_summary).
FACTS: dict[str, str] = {}

KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"  # Apache Kafka 3.9 in KRaft mode
MONGO_IMAGE = "mongo:7.0"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    mongo_uri: str
    source: str  # "env", "testcontainers" or "local"
    kafka_version: str


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka_env, mongo_env = os.environ.get("KAFKA_BOOTSTRAP"), os.environ.get("MONGO_URI")
    if kafka_env and mongo_env:
        source: Iterator[Infra] = iter(
            [Infra(kafka_env, mongo_env, "env", os.environ.get("KAFKA_VERSION", "unknown"))]
        )
    elif docker_available():
        source = _testcontainers()
    else:
        source = _local()
    for found in source:
        FACTS["kafka"] = f"Apache Kafka {found.kafka_version} at {found.kafka_bootstrap}"
        FACTS["source"] = found.source
        FACTS["store"] = _build_info(found.mongo_uri)
        yield found


def _build_info(uri: str) -> str:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        info = client.admin.command("buildInfo")
    ferret = info.get("ferretdb", {}).get("version") or info.get("ferretdbVersion")
    engine = f"FerretDB {ferret}" if ferret else "MongoDB"
    return f"{engine}, buildInfo version {info.get('version')}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FACTS:
        terminalreporter.section("infrastructure under test")
        for key, value in FACTS.items():
            terminalreporter.write_line(f"{key}: {value}")


def _testcontainers() -> Iterator[Infra]:
    import asyncio

    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    from hvc.common.topics import ensure_topics

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka, MongoDbContainer(MONGO_IMAGE) as mongo:
        bootstrap = kafka.get_bootstrap_server()
        asyncio.run(ensure_topics(bootstrap, replicas=1))
        yield Infra(bootstrap, mongo.get_connection_url(), "testcontainers", KAFKA_IMAGE)


def _local() -> Iterator[Infra]:
    inst = local.Instance.named("test")
    started = [n for n in ("kafka", "ferretdb") if local.running_pid(inst, n) is None]
    local.fetch(inst)
    local.up(inst)
    try:
        yield Infra(inst.kafka_bootstrap, inst.mongo_uri, "local", local.KAFKA_VERSION)
        # Every read closes its cursor (hvc.common.mongo.all_of): one left open on the store
        # after the suite is a leak, and enough of them hang the local store (README).
        try:
            leaked = local.open_cursors(inst)
        except OSError as exc:  # a store started by an older bootstrap: no listener there
            FACTS["open cursors on the store at the end"] = f"unknown ({exc})"
            leaked = {}
        else:
            FACTS["open cursors on the store at the end"] = (
                ", ".join(f"{k}: {n}" for k, n in leaked.items()) if leaked else "none"
            )
        if leaked:
            raise AssertionError(f"the suite left cursors open on the store: {leaked}")
    finally:
        # Leave running what was running before; stop what this session started.
        for name in ("ferretdb", "kafka"):
            if name in started:
                local.stop(inst, name)


async def start_group_at_end(bootstrap: str, group_id: str, topics: list[str]) -> None:
    """Commit a new consumer group's offsets at the topics' current ends, so a service started
    under it in a test reads only what the test produces, not the topics' whole history."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from hvc.common.topics import spec

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(spec(t).partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        from aiokafka.structs import OffsetAndMetadata

        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in ends.items()})
    finally:
        await consumer.stop()


class TopicWatch:
    """Collects a contract topic's messages from its current end, for tests that wait on them."""

    def __init__(self, bootstrap: str, topic: str, keep: Any) -> None:
        from aiokafka import AIOKafkaConsumer

        self.topic, self.keep = topic, keep
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self.seen: list[Any] = []
        # Each seen message's cause, from its hvc-cause headers (hvc.common.tracing).
        self.causes: list[tuple[str, int] | None] = []

    async def __aenter__(self) -> TopicWatch:
        import asyncio

        from aiokafka import TopicPartition

        from hvc.common import tracing
        from hvc.common.codec import codec_for
        from hvc.common.topics import spec

        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(spec(self.topic).partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self.changed = asyncio.Condition()
        codec = codec_for(self.topic)

        async def run() -> None:
            async for record in self.consumer:
                message = codec.deserialize(record.value)
                if self.keep(message):
                    async with self.changed:
                        self.seen.append(message)
                        self.causes.append(tracing.parse(record.headers))
                        self.changed.notify_all()

        self.task = asyncio.create_task(run())
        return self

    async def wait_for(self, count: int, within: float = 60.0) -> list[Any]:
        import asyncio

        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.seen) >= count)
        return list(self.seen)

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await self.consumer.stop()
