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
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from hvc.common.codec import MAX_MESSAGE_BYTES, InvalidEvent, codec_for
from hvc.common.service import keyed_group
from hvc.common.topics import spec
from hvc.devinfra.samples import samples

STREAM_SERVICES = ("tiering", "warnings", "benefits", "complaints")


def inputs_of(service: str) -> tuple[str, list[str]]:
    """("faust" or "keyed", the service's input topics)."""
    if importlib.util.find_spec(f"hvc.{service}.agents") is not None:
        return "faust", list(importlib.import_module(f"hvc.{service}.agents").INPUTS)
    if importlib.util.find_spec(f"hvc.{service}.streams") is not None:
        return "keyed", list(importlib.import_module(f"hvc.{service}.streams").INPUTS)
    return "none", []


def groups_of(service: str) -> dict[str, list[str]]:
    """The service's consumer groups and the topics each reads."""
    kind, topics = inputs_of(service)
    if kind == "faust":
        return {service: topics}
    return {keyed_group(service, t): [t] for t in topics}


def consumers(services: Iterable[str] = STREAM_SERVICES) -> dict[str, list[str]]:
    """Each input topic and the services that consume it."""
    out: dict[str, list[str]] = {}
    for s in services:
        for t in inputs_of(s)[1]:
            out.setdefault(t, []).append(s)
    return out


async def groups_at_end(kafka: str, services: Iterable[str] = STREAM_SERVICES) -> None:
    """Start the services' groups at their topics' ends: a run reads only what it produces."""
    from hvc.devinfra.pytest_plugin import start_group_at_end

    for s in services:
        for group, topics in groups_of(s).items():
            # A group whose members of an earlier run have not timed out yet refuses the commit.
            for attempt in range(60):
                try:
                    await start_group_at_end(kafka, group, topics)
                    break
                except Exception:
                    if attempt == 59:
                        raise
                    await asyncio.sleep(2)


async def lag(kafka: str, services: Iterable[str] = STREAM_SERVICES) -> dict[str, int]:
    """Messages not yet committed, per consumer group (committed offset vs the end)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    probe = AIOKafkaConsumer(bootstrap_servers=kafka)
    await admin.start()
    await probe.start()
    try:
        out: dict[str, int] = {}
        for s in services:
            for group, topics in groups_of(s).items():
                tps = [TopicPartition(t, p) for t in topics for p in range(spec(t).partitions)]
                ends = await probe.end_offsets(tps)
                committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                out[group] = sum(
                    ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in tps
                )
        return out
    finally:
        await probe.stop()
        await admin.close()


async def wait_no_lag(
    kafka: str, services: Iterable[str] = STREAM_SERVICES, within_s: float = 180.0
) -> float:
    """Seconds until every group has committed everything; raises TimeoutError past within_s."""
    services = list(services)
    t0 = time.monotonic()
    last: dict[str, int] = {}
    while time.monotonic() - t0 < within_s:
        last = await lag(kafka, services)
        if not any(last.values()):
            return time.monotonic() - t0
        await asyncio.sleep(0.5)
    raise TimeoutError(f"lag did not return to zero within {within_s}s: {last}")


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
    bad.customer_id = "no such/customer id"
    out.append(Poison("unsafe-customer-id", bad.SerializeToString()))
    out.append(Poison("just-over-the-limit", b"\x0a" + b"\xff" * (MAX_MESSAGE_BYTES + 100)))
    out.append(Poison("ten-megabytes", b"\x00" * (10 << 20)))  # the local broker takes 11 MB
    out.append(Poison("garbage-bytes", b"\xde\xad\xbe\xef" * 8))
    out.append(Poison("tombstone", None))
    for p in out:
        if not _refused(codec, p.value):
            raise AssertionError(f"{topic}: the codec accepts the '{p.name}' poison")
    return out


def valid(topic: str, tag: str, customer_id: str) -> list[Message]:
    """Valid messages of every kind the topic carries, for a customer nobody has seen."""
    out = []
    for t, _, m in samples(tag):
        if t == topic:
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
