"""What the fault tests (tests/chaos) and the benchmarks share: the services' consumer groups,
their lag, and a set of messages that break the contract in every way an upstream can.

Every poison message is checked against the contract codec here, so a test that offers it
knows the services must dead-letter it (and a codec that started accepting it fails loudly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import importlib.util
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from hvc.common.codec import MAX_MESSAGE_BYTES, InvalidEvent, codec_for
from hvc.common.mongo import all_of
from hvc.common.service import stream_group
from hvc.common.topics import spec
from hvc.devinfra.samples import samples

STREAM_SERVICES = ("tiering", "warnings", "benefits", "complaints")


def inputs_of(service: str) -> tuple[str, list[str]]:
    """("engine", the service's input topics), or ("none", []) for a service with no stream."""
    if importlib.util.find_spec(f"hvc.{service}.pipeline") is not None:
        return "engine", list(importlib.import_module(f"hvc.{service}.pipeline").INPUTS)
    return "none", []


def service_env(service: str, databases: Mapping[str, str]) -> dict[str, str]:
    """The environment of a service run on `databases` (each service's, not its own): its
    database, and for complaints the consumer group of tiering's pipeline on tiering's
    database, whose progress its filings wait for."""
    env = {"MONGO_DATABASE": databases[service]}
    if service == "complaints":
        env["HVC_COMPLAINTS_TIERING_GROUP"] = stream_group("tiering", databases.get("tiering"))
    return env


def groups_of(service: str, databases: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The service's consumer groups and the topics each reads; `databases`: the database
    each service runs on, where not its own (an engine's group goes with it)."""
    kind, topics = inputs_of(service)
    if kind == "engine":
        return {stream_group(service, (databases or {}).get(service)): topics}
    return {}


def consumers(services: Iterable[str] = STREAM_SERVICES) -> dict[str, list[str]]:
    """Each input topic and the services that consume it."""
    out: dict[str, list[str]] = {}
    for s in services:
        for t in inputs_of(s)[1]:
            out.setdefault(t, []).append(s)
    return out


async def groups_at_end(
    kafka: str,
    services: Iterable[str] = STREAM_SERVICES,
    databases: Mapping[str, str] | None = None,
) -> None:
    """Start the services' groups at their topics' ends: a run reads only what it produces."""
    from hvc.devinfra.pytest_plugin import start_group_at_end

    for s in services:
        for group, topics in groups_of(s, databases).items():
            # A group whose members of an earlier run have not timed out yet refuses the commit.
            for attempt in range(60):
                try:
                    await start_group_at_end(kafka, group, topics)
                    break
                except Exception:
                    if attempt == 59:
                        raise
                    await asyncio.sleep(2)


class LagProbe:
    """Consumer groups' lag (committed offsets against the ends), its clients kept open for
    repeated readings (`async with LagProbe(kafka) as probe`)."""

    def __init__(self, kafka: str) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self.admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
        self.probe = AIOKafkaConsumer(bootstrap_servers=kafka)

    async def __aenter__(self) -> LagProbe:
        await self.admin.start()
        await self.probe.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.probe.stop()
        await self.admin.close()

    async def of_group(self, group: str, topics: Iterable[str]) -> int:
        return sum((await self.by_partition(group, topics)).values())

    async def by_partition(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        """The group's lag per input partition (`<topic>[<partition>]`), those behind only."""
        from aiokafka import TopicPartition

        tps = [TopicPartition(t, p) for t in topics for p in range(spec(t).partitions)]
        ends = await self.probe.end_offsets(tps)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        behind = {
            f"{tp.topic}[{tp.partition}]": ends[tp]
            - max(0, committed[tp].offset if tp in committed else 0)
            for tp in tps
        }
        return {k: n for k, n in behind.items() if n}

    async def of(self, service: str, databases: Mapping[str, str] | None = None) -> int:
        """The service's lag, over all its groups."""
        groups = groups_of(service, databases)
        return sum([await self.of_group(g, t) for g, t in groups.items()])


async def lag(
    kafka: str,
    services: Iterable[str] = STREAM_SERVICES,
    databases: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Messages not yet committed, per consumer group (committed offset vs the end)."""
    async with LagProbe(kafka) as probe:
        return {
            group: await probe.of_group(group, topics)
            for s in services
            for group, topics in groups_of(s, databases).items()
        }


async def wait_no_lag(
    kafka: str,
    services: Iterable[str] = STREAM_SERVICES,
    within_s: float = 180.0,
    databases: Mapping[str, str] | None = None,
) -> float:
    """Seconds until every group has committed everything; raises TimeoutError past within_s."""
    services = list(services)
    t0 = time.monotonic()
    last: dict[str, int] = {}
    while time.monotonic() - t0 < within_s:
        last = await lag(kafka, services, databases)
        if not any(last.values()):
            return time.monotonic() - t0
        await asyncio.sleep(0.5)
    # Which partitions are behind, and where each one's group stands, for whoever looks into it.
    async with LagProbe(kafka) as probe:
        behind = {
            group: await probe.by_partition(group, topics)
            for s in services
            for group, topics in groups_of(s, databases).items()
            if last.get(group)
        }
    raise TimeoutError(f"lag did not return to zero within {within_s}s: {last}; behind: {behind}")


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None


def _enum_paths(desc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for fd in desc.fields:
        if fd.type == FieldDescriptor.TYPE_ENUM and not _repeated(fd):
            out.append((*prefix, fd.name))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE and not _repeated(fd):
            if fd.message_type.full_name.startswith("google.protobuf"):
                continue
            out.extend(_enum_paths(fd.message_type, (*prefix, fd.name)))
    return out


def _money_paths(desc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for fd in desc.fields:
        if fd.name.endswith("_fen") and not _repeated(fd):
            out.append((*prefix, fd.name))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE and not _repeated(fd):
            if not fd.message_type.full_name.startswith("google.protobuf"):
                out.extend(_money_paths(fd.message_type, (*prefix, fd.name)))
    return out


def _repeated(fd: Any) -> bool:
    return bool(fd.is_repeated)


def _set(msg: Message, path: tuple[str, ...], value: Any) -> None:
    target: Any = msg
    for name in path[:-1]:
        target = getattr(target, name)
    setattr(target, path[-1], value)


def poison_set(topic: str, tag: str) -> list[Poison]:
    """Messages for `topic` that the contract refuses, one of each way an upstream can fail."""
    codec = codec_for(topic)
    mine = [m for t, _, m in samples(tag) if t == topic]
    others = [m for t, _, m in samples(tag) if t != topic]
    good = mine[0].SerializeToString()
    out: list[Poison] = []
    for cut in range(len(good) - 1, 0, -1):
        if _refused(codec, good[:cut]):
            out.append(Poison("truncated", good[:cut]))
            break
    wrong = next(o.SerializeToString() for o in others if _refused(codec, o.SerializeToString()))
    out.append(Poison("wrong-message-type", wrong))
    for m in mine:
        paths = _enum_paths(m.DESCRIPTOR)
        present = [p for p in paths if _has(m, p)]
        if present:
            bad = _copy(m)
            _set(bad, present[0], 999)
            out.append(Poison("unknown-enum-value", bad.SerializeToString()))
            break
    missing = _copy(mine[0])
    missing.ClearField("event_id")
    out.append(Poison("missing-required-field", missing.SerializeToString()))
    for m in mine:
        present = [p for p in _money_paths(m.DESCRIPTOR) if _has(m, p)]
        if present:
            bad = _copy(m)
            _set(bad, present[0], -100)
            out.append(Poison("negative-money", bad.SerializeToString()))
            break
    for year in (1900, 2200):
        bad = _copy(mine[0])
        when: Any = bad.occurred_at
        when.FromDatetime(dt.datetime(year, 1, 1, tzinfo=dt.UTC))
        out.append(Poison(f"occurred-in-{year}", bad.SerializeToString()))
    bad = _copy(mine[0])
    if "customer_id" in bad.DESCRIPTOR.fields_by_name:
        bad.customer_id = "no such/customer id"
        out.append(Poison("unsafe-customer-id", bad.SerializeToString()))
    else:  # an outage names no customer: its own id is the key
        bad.outage_id = "no such/outage id"
        out.append(Poison("unsafe-outage-id", bad.SerializeToString()))
    out.append(Poison("just-over-the-limit", b"\x0a" + b"\xff" * (MAX_MESSAGE_BYTES + 100)))
    out.append(Poison("ten-megabytes", b"\x00" * (10 << 20)))  # the local broker takes 11 MB
    out.append(Poison("garbage-bytes", b"\xde\xad\xbe\xef" * 8))
    out.append(Poison("tombstone", None))
    for p in out:
        if not _refused(codec, p.value):
            raise AssertionError(f"{topic}: the codec accepts the '{p.name}' poison")
    return out


def valid(topic: str, tag: str, customer_id: str) -> list[Message]:
    """Valid messages of every kind the topic carries, for a customer nobody has seen (an
    outage: one nobody announced, ended after its announcement)."""
    out = []
    for t, _, m in samples(tag):
        if t == topic:
            if "customer_id" in m.DESCRIPTOR.fields_by_name:
                m.customer_id = customer_id  # type: ignore[attr-defined]
            out.append(m)
    return out


def _refused(codec: Any, value: bytes | None) -> bool:
    try:
        codec.deserialize(value)
    except InvalidEvent:
        return True
    return False


def _has(msg: Message, path: tuple[str, ...]) -> bool:
    target: Any = msg
    for name in path[:-1]:
        if not target.HasField(name):
            return False
        target = getattr(target, name)
    return True


def _copy(m: Message) -> Any:
    c = type(m)()
    c.CopyFrom(m)
    return c


# -- effects: what the services published, by event id -----------------------------------

OUTPUTS = (
    "hvc.tier-decisions.v1",
    "hvc.warnings.v1",
    "hvc.benefits.v1",
    "billing.commands.v1",
    "hvc.complaints.v1",
    "hvc.notifications.v1",
    "hvc.staff-notifications.v1",
)


async def end_offsets(kafka: str, topics: Iterable[str]) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(bootstrap_servers=kafka)
    await probe.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(spec(t).partitions)]
        return dict(await probe.end_offsets(tps))
    finally:
        await probe.stop()


async def end_offsets_by_name(kafka: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """`end_offsets` keyed by (topic, partition): what a views rebuild's `since` takes."""
    return {(tp.topic, tp.partition): n for tp, n in (await end_offsets(kafka, topics)).items()}


async def effects_since(
    kafka: str, since: dict[Any, int], quiet_s: float = 10.0, within_s: float = 300.0
) -> dict[str, Counter[str]]:
    """Every event id published on the output topics after `since`, with how many times each
    was published; read until nothing new has come for `quiet_s` (timers included)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    out: dict[str, Counter[str]] = {t: Counter() for t in {tp.topic for tp in since}}
    try:
        consumer.assign(list(since))
        for tp, off in since.items():
            consumer.seek(tp, off)
        deadline = time.monotonic() + within_s
        last_new = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                codec = codec_for(tp.topic)
                for r in records:
                    out[tp.topic][codec.deserialize(r.value).event_id] += 1
                    last_new = time.monotonic()
        return out
    finally:
        await consumer.stop()


def compare(
    expected: dict[str, Counter[str]], found: dict[str, Counter[str]]
) -> list[dict[str, Any]]:
    """Per output topic: effects expected (a fault-free run's), found, lost, unexpected (an
    effect with an id the fault-free run never made: a doubled decision), and copies (the same
    event id published again after a crash between publishing and recording it: consumers
    de-duplicate by event id)."""
    rows = []
    for topic in sorted(set(expected) | set(found)):
        want, got = set(expected.get(topic, ())), found.get(topic, Counter())
        rows.append(
            {
                "where": topic,
                "expected": len(want),
                "found": len(want & set(got)),
                "lost": len(want - set(got)),
                "duplicated": len(set(got) - want),
                "copies": sum(got.values()) - len(got),
            }
        )
    return rows


async def republish(kafka: str, since: dict[Any, int], until: dict[Any, int]) -> int:
    """Publish again, to the same partitions with the same keys, values and headers, every
    record between `since` and `until`: an upstream replaying its whole output."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, max_partition_fetch_bytes=4 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=10)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        todo = {tp: end for tp, end in until.items() if end > since.get(tp, 0)}
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, since.get(tp, 0))
        pending = []
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= todo.get(tp, -1):
                        continue
                    pending.append(
                        await producer.send(
                            tp.topic,
                            r.value,
                            key=r.key,
                            partition=tp.partition,
                            headers=list(r.headers),
                        )
                    )
                if records and records[-1].offset + 1 >= until[tp]:
                    todo.pop(tp, None)
            await asyncio.gather(*pending)
            sent += len(pending)
            pending = []
        return sent
    finally:
        await producer.stop()
        await consumer.stop()


async def drop_databases(uri: str, databases: Iterable[str]) -> None:
    from pymongo import AsyncMongoClient

    client: Any = AsyncMongoClient(uri)
    try:
        for name in databases:
            await client.drop_database(name)
    finally:
        await client.close()


async def store_state(uri: str, databases: Iterable[str]) -> dict[str, str]:
    """A digest of every collection of the given databases (documents in `_id` order)."""
    import hashlib

    import bson
    from pymongo import ASCENDING, AsyncMongoClient

    client: Any = AsyncMongoClient(uri)
    try:
        out: dict[str, str] = {}
        for name in databases:
            db = client[name]
            for coll in sorted(await db.list_collection_names()):
                h = hashlib.sha256()
                for d in await all_of(db[coll].find({}).sort("_id", ASCENDING)):
                    h.update(bson.encode(d))
                out[f"{name}.{coll}"] = h.hexdigest()[:16]
        return out
    finally:
        await client.close()


async def store_documents(
    uri: str, databases: Mapping[str, str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every document of each service's database, as {"<service>.<collection>": {repr of
    `_id`: document}}: what its APIs would read, to compare two runs of the same feed."""
    from pymongo import AsyncMongoClient

    client: Any = AsyncMongoClient(uri)
    try:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for service, name in sorted(databases.items()):
            db = client[name]
            for coll in sorted(await db.list_collection_names()):
                docs = await all_of(db[coll].find({}))
                out[f"{service}.{coll}"] = {repr(d["_id"]): d for d in docs}
        return out
    finally:
        await client.close()


# What two runs of the same feed may store differently, by design rather than by a fault: each
# is decided by the order in which records of different partitions or services arrive, which
# a fault (a kill, a rebalance, a restart) changes. Everything else a run stores must be the
# same document for document.
ARRIVAL_ORDER: dict[str, frozenset[str]] = {
    # decided at wall time, from the coordinates of its cause (tiering's own record)
    "tiering.tier_history": frozenset({"decided_at", "cause"}),
    # a manager's slots go to its customers as their assignments arrive from their partitions,
    # so which slot numbers are taken, and by whom, is theirs ("*": any document may differ;
    # a scale 1 -> 3 -> 1 in CI took slot 200 where the fault-free run took 198)
    "warnings.assignments": frozenset({"slot"}),
    "warnings.manager_slots": frozenset({"*"}),
    # a group's churn warning names the first members whose warnings reached the group's
    # partition, and is detected when the last of them did (a warning's tier is not here:
    # it follows the decisions that come after it, hvc.warnings.pipeline)
    "warnings.warnings": frozenset({"notes", "detected_at"}),
    "warnings.tasks": frozenset({"notes", "opened_at", "due_at"}),
    # a callback planned by the tier decisions that had arrived stays when a later one shows
    # the customer was not due, and a decision arriving after its quarter has ended plans
    # none for that quarter ("*": documents may be missing, extra or differ in any field)
    "warnings.callbacks": frozenset({"*"}),
    # a benefit's ledger entry carries the tier the decisions that had arrived said (tiering
    # publishes them at its own pace, and a decision still on its way leaves the one before;
    # README, Reliability)
    "benefits.ledger": frozenset({"tier"}),
}


def _comparable(doc: dict[str, Any], ignored: frozenset[str]) -> dict[str, Any]:
    """The document without the fields `ignored` names ("counts.tier:": the keys starting
    "tier:" of the JSON object in field counts), JSON objects in strings decoded (their keys'
    order is the order the counts came in)."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if k in ignored:
            continue
        if isinstance(v, str) and v.startswith("{"):
            try:
                v = json.loads(v)
            except ValueError:
                pass
            else:
                drop = tuple(i.split(".", 1)[1] for i in ignored if i.startswith(f"{k}."))
                v = {kk: vv for kk, vv in v.items() if not (drop and kk.startswith(drop))}
        out[k] = v
    return out


def compare_documents(
    expected: Mapping[str, Mapping[str, dict[str, Any]]],
    found: Mapping[str, Mapping[str, dict[str, Any]]],
    ignore: Mapping[str, frozenset[str]] = ARRIVAL_ORDER,
) -> list[dict[str, Any]]:
    """Per collection (`store_documents`' names): documents expected (a fault-free run's);
    the ids missing, extra, and differing beyond the fields `ignore` names for it; `free`:
    whether documents may be missing, extra or differ there ("*" in `ignore`); and
    `arrival_order`: how many documents differ in those fields only."""
    rows = []
    for coll in sorted(set(expected) | set(found)):
        want, got = expected.get(coll, {}), found.get(coll, {})
        ignored = ignore.get(coll, frozenset())
        differing: list[str] = []
        changed = 0  # documents that differ at all (each pair decoded once if equal)
        for k in set(want) & set(got):
            if _comparable(want[k], frozenset()) == _comparable(got[k], frozenset()):
                continue
            changed += 1
            if "*" not in ignored and _comparable(want[k], ignored) != _comparable(got[k], ignored):
                differing.append(k)
        differing.sort()
        rows.append(
            {
                "collection": coll,
                "documents": len(want),
                "missing": sorted(set(want) - set(got)),
                "extra": sorted(set(got) - set(want)),
                "differing": differing,
                "free": "*" in ignored,
                "arrival_order": changed - len(differing),
            }
        )
    return rows
