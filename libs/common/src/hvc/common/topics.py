"""The one table of every Kafka topic hvc uses, with its message type and settings."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import Message

from hvc.events.v1 import (
    accounts_pb2,
    benefits_pb2,
    billing_commands_pb2,
    calls_pb2,
    care_pb2,
    clock_pb2,
    complaints_pb2,
    customers_pb2,
    notifications_pb2,
    outages_pb2,
    staff_pb2,
    tiering_pb2,
    usage_pb2,
    warnings_pb2,
)

log = logging.getLogger(__name__)

DAY_MS: Final = 24 * 3600 * 1000
DLQ_SUFFIX: Final = ".dlq"
# Every customer-keyed topic has this many partitions, so that whatever a service joins is
# co-partitioned by construction: a customer's crm, usage, calls, bills and tier decisions are
# all in partition murmur2(customer_id) % PARTITIONS of their topics, and one consumer of one
# group holds all of them, with that partition's state. It also bounds a service's replicas.
# Changing it repartitions every topic at once (new topics, a replay), never one of them.
PARTITIONS: Final = 12
CLOCK: Final = "hvc.clock.v1"
TIERING_COMMANDS: Final = "hvc.tiering-commands.v1"
COMPLAINTS_COMMANDS: Final = "hvc.complaints-commands.v1"
STAFF_NOTIFICATIONS: Final = "hvc.staff-notifications.v1"
OUTAGES: Final = "network.outages.v1"
OUTAGES_FANOUT: Final = "hvc.outages-fanout.v1"
GROUP_SIGNALS: Final = "hvc.group-signals.v1"
GROUP_FILES: Final = "hvc.group-files.v1"


@dataclass(frozen=True)
class TopicSpec:
    """A topic as declared once for the local bootstrap and the Kubernetes KafkaTopics."""

    name: str
    message: type[Message] | None  # None for dead-letter topics: raw bytes as received
    retention_ms: int
    partitions: int = PARTITIONS
    compacted: bool = False
    key: str = "customer_id"
    producers: tuple[str, ...] = ()
    replicas: int = 3  # production replication; the local single node uses 1
    min_insync_replicas: int = 2
    extra_config: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith(DLQ_SUFFIX)

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    def config(self) -> dict[str, str]:
        """Kafka topic-level configuration (retention, cleanup policy)."""
        cfg = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        cfg.update(self.extra_config)
        return cfg


def _contract() -> tuple[TopicSpec, ...]:
    upstream = ("upstream",)
    return (
        # Inbound: published by the operator's billing, CRM, network and care systems.
        TopicSpec(
            "crm.customers.v1",
            customers_pb2.CustomerEvent,
            30 * DAY_MS,
            key="customer_id (group_id for GroupUpserted)",
            producers=upstream,
        ),
        TopicSpec("billing.usage.v1", usage_pb2.UsageRecorded, 7 * DAY_MS, producers=upstream),
        TopicSpec(
            "billing.accounts.v1", accounts_pb2.AccountEvent, 30 * DAY_MS, producers=upstream
        ),
        TopicSpec("network.calls.v1", calls_pb2.CallRecorded, 7 * DAY_MS, producers=upstream),
        TopicSpec(
            OUTAGES,
            outages_pb2.OutageEvent,
            30 * DAY_MS,
            key="outage_id",
            producers=upstream,
        ),
        TopicSpec(
            "care.complaints.v1",
            care_pb2.ComplaintEvent,
            30 * DAY_MS,
            producers=("upstream", "gateway"),
        ),
        # Outbound: the services' decisions.
        TopicSpec(
            "hvc.tier-decisions.v1",
            tiering_pb2.TierDecided,
            90 * DAY_MS,
            producers=("tiering",),
        ),
        TopicSpec(
            "hvc.warnings.v1", warnings_pb2.WarningEvent, 30 * DAY_MS, producers=("warnings",)
        ),
        TopicSpec(
            "hvc.benefits.v1", benefits_pb2.BenefitEvent, 30 * DAY_MS, producers=("benefits",)
        ),
        TopicSpec(
            "billing.commands.v1",
            billing_commands_pb2.BillingCommand,
            30 * DAY_MS,
            producers=("benefits",),
        ),
        TopicSpec(
            "hvc.notifications.v1",
            notifications_pb2.NotificationRequested,
            7 * DAY_MS,
            producers=("tiering", "warnings", "benefits", "complaints"),
        ),
        TopicSpec(
            "hvc.complaints.v1",
            complaints_pb2.ComplaintUpdated,
            30 * DAY_MS,
            producers=("complaints",),
        ),
        TopicSpec(
            STAFF_NOTIFICATIONS,
            staff_pb2.StaffNotificationEvent,
            7 * DAY_MS,
            key="staff_id",
            producers=("warnings", "complaints"),
        ),
        # Internal: the wall clock for the stream engine's partitions (hvc.common.streams),
        # one record to each partition per tick, by each service that follows the wall clock.
        TopicSpec(
            CLOCK,
            clock_pb2.ClockTicked,
            1 * DAY_MS,
            key="none (one record to each partition)",
            producers=("warnings", "benefits", "complaints"),
        ),
        # Internal: what tiering's HTTP side and annual run decided, and its groups shared
        # with their key people, as inputs of its pipeline (hvc.tiering.pipeline).
        TopicSpec(
            TIERING_COMMANDS,
            tiering_pb2.TieringCommand,
            90 * DAY_MS,
            key="customer_id (group_id for MemberJoined and MemberLeft)",
            producers=("tiering",),
        ),
        # Between services: a group customer's file as tiering keeps it on the group's
        # partition, published when it changes; the warnings pipeline plans visits from it.
        # Compacted: the latest file of every group stays for a replay.
        TopicSpec(
            GROUP_FILES,
            tiering_pb2.GroupFiled,
            30 * DAY_MS,
            key="group_id",
            producers=("tiering",),
            compacted=True,
        ),
        # Internal: each outage, as the warnings pipeline read it from network.outages.v1 in one
        # partition, copied to every partition (a key that lands in each): every partition's
        # customers are looked up in that partition's own state (hvc.warnings.outages).
        TopicSpec(
            OUTAGES_FANOUT,
            outages_pb2.OutageEvent,
            30 * DAY_MS,
            key="one per partition (hvc.common.topics.partition_keys)",
            producers=("warnings",),
        ),
        # Internal: a group member's warning, sent by the warnings pipeline from the member's
        # partition to the group's (keyed by group_id), where a group warning is decided.
        TopicSpec(
            GROUP_SIGNALS,
            warnings_pb2.GroupSignalEvent,
            30 * DAY_MS,
            key="group_id",
            producers=("warnings",),
        ),
        # Internal: what complaints' HTTP side asked of a complaint (transitions, work orders),
        # as an input of its pipeline (hvc.complaints.pipeline), which decides them.
        TopicSpec(
            COMPLAINTS_COMMANDS,
            complaints_pb2.ComplaintCommand,
            30 * DAY_MS,
            producers=("complaints",),
        ),
    )


def _with_dead_letters(specs: Iterable[TopicSpec]) -> tuple[TopicSpec, ...]:
    out: list[TopicSpec] = []
    for spec in specs:
        out.append(spec)
        # Dead letters are kept long enough for a person to look at them and replay.
        out.append(
            TopicSpec(spec.dlq, None, 30 * DAY_MS, 3, key=spec.key, producers=("any consumer",))
        )
    return tuple(out)


TOPICS: Final[tuple[TopicSpec, ...]] = _with_dead_letters(_contract())
BY_NAME: Final[Mapping[str, TopicSpec]] = {t.name: t for t in TOPICS}
CONTRACT_TOPICS: Final[tuple[TopicSpec, ...]] = tuple(t for t in TOPICS if not t.is_dlq)


class NotCoPartitioned(RuntimeError):
    """Topics a service joins whose partition counts differ: a customer's events would be in
    partitions that different consumers hold."""


class InputsMissing(RuntimeError):
    """Topics a service reads that the broker does not have. They are the registry's, made by
    the bootstrap or Strimzi: the engine would otherwise create them itself, with one
    partition and the broker's defaults."""


def copartitioned(counts: Mapping[str, int]) -> int:
    """The one partition count of the topics `counts` gives (name -> partitions), or
    NotCoPartitioned naming them."""
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{n}: {c}" for n, c in sorted(counts.items()))
        raise NotCoPartitioned(f"inputs are not co-partitioned ({shown})")
    return next(iter(counts.values()), PARTITIONS)


async def broker_partitions(
    bootstrap_servers: str, names: Iterable[str], timeout_s: float = 10.0, **client_kwargs: object
) -> dict[str, int]:
    """How many partitions each of `names` has on the broker (absent topics are left out).
    A topic just created may not have its leaders yet: it is asked again, for a while."""
    from aiokafka.admin import AIOKafkaAdminClient

    unknown = 3  # UNKNOWN_TOPIC_OR_PARTITION
    wanted, out = list(names), {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_kwargs)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while wanted:
            pending = []
            for t in await admin.describe_topics(wanted):
                if t["error_code"] == 0 and t["partitions"]:
                    out[t["topic"]] = len(t["partitions"])
                    if any(p["leader"] < 0 for p in t["partitions"]):
                        pending.append(t["topic"])  # counted; its leaders asked again
                elif t["error_code"] != unknown:
                    pending.append(t["topic"])
            if not pending or asyncio.get_running_loop().time() > deadline:
                break
            wanted = pending
            await asyncio.sleep(0.2)
        return out
    finally:
        await admin.close()


async def wait_for_topics(
    bootstrap_servers: str, names: Iterable[str], wait_s: float = 30.0, **client_kwargs: object
) -> dict[str, int]:
    """`broker_partitions` of `names`, asked again until all of them have shown or `wait_s`
    has passed (a topic just created reaches the broker's metadata a moment later, seconds
    on a loaded or new broker); those not shown by then are left out."""
    wanted = list(dict.fromkeys(names))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        left = max(0.0, deadline - loop.time())
        counts = await broker_partitions(bootstrap_servers, wanted, left, **client_kwargs)
        if len(counts) == len(wanted) or loop.time() >= deadline:
            return counts
        await asyncio.sleep(0.2)


def spec(name: str) -> TopicSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"topic {name!r} is not in the registry (hvc.common.topics)") from None


async def ensure_topics(
    bootstrap_servers: str,
    *,
    replicas: int | None = None,
    specs: Iterable[TopicSpec] = TOPICS,
    timeout_s: float = 60.0,
    **client_kwargs: object,
) -> list[str]:
    """Create every registry topic that does not exist yet; return the names created.

    `replicas` overrides the production replication factor (1 on a single local node).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_kwargs)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        new = []
        for s in wanted:
            rf = replicas if replicas is not None else s.replicas
            cfg = s.config()
            cfg["min.insync.replicas"] = str(min(s.min_insync_replicas, rf))
            new.append(NewTopic(s.name, s.partitions, rf, topic_configs=cfg))
        await admin.create_topics(new, validate_only=False)
        log.info("created topics", extra={"topics": [t.name for t in wanted]})
        return [s.name for s in wanted]
    finally:
        await admin.close()


@functools.cache
def partition_keys(topic: str) -> tuple[str, ...]:
    """A key for each partition of `topic`, in partition order: the producers' default
    partitioner (murmur2 of the key, as Kafka's Java client and librdkafka's `murmur2_random`
    place a keyed record) puts the record keyed `keys[p]` in partition p. What one partition
    of a pipeline copies to all of them goes out with these (an outage to every partition's
    customers, hvc.warnings.outages)."""
    from aiokafka.partitioner import murmur2

    n = spec(topic).partitions
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < n:
        key = f"p{i}"
        keys.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % n, key)
        i += 1
    return tuple(keys[p] for p in range(n))
