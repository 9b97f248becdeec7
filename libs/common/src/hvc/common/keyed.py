"""Keyed state per partition on aiokafka directly, persisted with its offsets.

Why not faust for these streams: a faust table writes one changelog message per update, which
on a hot topic (usage, calls: many events per customer per day) costs more than the detection
itself, and its state and the consumer's committed offset move separately. Here:

- each (topic, partition) owns a dict customer -> state (plain JSON-able dicts), applied in
  offset order by a `Processor`, whose `apply` is synchronous and pure apart from that state;
  what it decides to do in the world comes back as `Effect`s, awaited before the next record
  (each effect is idempotent by a key derived from its cause);
- every `flush_interval_s` the changed states are appended to an insert-only **state log** in
  MongoDB, in chunk documents followed by one commit document that carries the partition's
  next offset and event-time watermark. Only then is the offset committed to Kafka. A crash
  anywhere replays from the last commit; chunks without their commit are ignored on load;
- on assignment the partition's log is read back (newest snapshot, then the deltas after it)
  and the consumer seeks to the committed offset of the log, so state and position always
  agree. The log is compacted into a snapshot every `snapshot_every` commits;
- each partition keeps an event-time watermark (the latest `occurred_at` seen, or the wall
  clock in `wall` mode); when it moves, the processor may close periods (daily, monthly) over
  all of that partition's states, so signals of absence fire without waiting for an event of
  the customer concerned.

The insert-only log suits the local FerretDB, where an update scans its collection, and is
plain MongoDB elsewhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from hvc.common import tracing
from hvc.common.codec import InvalidEvent, decode
from hvc.common.mongo import opened

log = logging.getLogger(__name__)

State = dict[str, Any]
Effect = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class InOrder:
    """An effect run after the earlier effects made with the same `key` and not yet run
    (effects otherwise run concurrently): for an effect that reads what an earlier one
    writes, such as a close's second midnight reading the first one's grant."""

    key: str
    effect: Effect

    def __call__(self) -> Awaitable[Any]:
        return self.effect()


def _bound(effect: Effect, cause: tracing.Cause) -> Effect:
    if isinstance(effect, InOrder):
        return InOrder(effect.key, tracing.bind(effect.effect, cause))
    return tracing.bind(effect, cause)


RECORDS = Counter(
    "hvc_keyed_records_total", "Records consumed by keyed streams", ["stream", "topic"]
)
WATERMARK = Gauge(
    "hvc_keyed_watermark_seconds", "Event-time watermark", ["stream", "topic", "partition"]
)
LATE_EVENTS = Counter(
    "hvc_late_events_total",
    "Events older than their processor's de-duplication horizon: not counted (a copy of one "
    "counted before cannot be told from a late first delivery)",
    ["topic"],
)
CHUNK = 2000  # states per chunk document, well under MongoDB's 16 MB
COMMIT = "~"  # sorts after every chunk number within a commit's sequence


@dataclass(frozen=True)
class Meta:
    topic: str
    partition: int
    offset: int


class Processor(Protocol):
    """What one input topic does: its message type, the key of its state, and the rules."""

    @property
    def topic(self) -> str: ...

    @property
    def message(self) -> type[Message]: ...

    def key(self, event: Any) -> str | None:
        """The state key (customer id); None for events that carry no keyed state."""

    def apply(self, event: Any, state: State, meta: Meta) -> Sequence[Effect]:
        """Fold the event into `state` (mutate it) and return the effects it causes.
        Raise InvalidEvent to dead-letter the event without changing anything."""

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Effect]:
        """The partition's watermark moved from `before` to `after` (epoch seconds)."""


def _log_prefix(topic: str, partition: int) -> str:
    return f"{topic}|{partition:04d}|"


@dataclass
class Loaded:
    states: dict[str, State]
    offset: int | None
    watermark: int
    next_seq: int
    commits_since_snapshot: int


def _escape_keys(v: Any) -> Any:
    """State as the store takes it: a key holding `.`, `%` or a leading `$` (event ids with dots
    are valid; FerretDB refuses such field names and MongoDB discourages them) is written with
    those characters percent-encoded. `_unescape_keys` reverses it exactly."""
    if isinstance(v, dict):
        return {
            (_quote(k) if ("." in k or "%" in k or k[:1] == "$") else k): _escape_keys(x)
            for k, x in v.items()
        }
    if isinstance(v, list):
        return [_escape_keys(x) for x in v]
    return v


def _unescape_keys(v: Any) -> Any:
    if isinstance(v, dict):
        return {(_unquote(k) if "%" in k else k): _unescape_keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unescape_keys(x) for x in v]
    return v


def _quote(k: str) -> str:
    k = k.replace("%", "%25").replace(".", "%2E")
    return "%24" + k[1:] if k[:1] == "$" else k


_ESCAPED = re.compile(r"%(25|2E|24)")
_PLAIN = {"25": "%", "2E": ".", "24": "$"}


def _unquote(k: str) -> str:
    return _ESCAPED.sub(lambda m: _PLAIN[m.group(1)], k)


class _Fold:
    """Rebuilds one partition's state from its log documents, in `_id` order."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.pending: list[tuple[str, Any]] = []
        self.pending_seq = -1
        self.offset: int | None = None
        self.watermark = 0
        self.last_seq = -1
        self.since = 0

    def add(self, seq: int, part: str, doc: dict[str, Any]) -> None:
        self.last_seq = max(self.last_seq, seq)
        if seq != self.pending_seq:
            self.pending, self.pending_seq = [], seq  # chunks of a commit that never completed
        if part != COMMIT:
            self.pending.extend((e["k"], _unescape_keys(e["v"])) for e in doc["s"])
            return
        if doc.get("snapshot"):
            self.states = {}
            self.since = 0
        else:
            self.since += 1
        for key, value in self.pending:
            if value is None:
                self.states.pop(key, None)
            else:
                self.states[key] = value
        self.pending = []
        self.offset, self.watermark = doc["offset"], doc.get("wm", 0)

    def loaded(self) -> Loaded:
        return Loaded(self.states, self.offset, self.watermark, self.last_seq + 1, self.since)


class StateLog:
    """The insert-only log of one stream's partition states in one collection."""

    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self.coll = collection

    async def load_many(self, topic: str, partitions: Iterable[int]) -> dict[int, Loaded]:
        """The partitions' states and positions, in one `_id`-ordered scan of the topic's log
        (one scan, not one per partition: a filtered read scans the collection on FerretDB)."""
        wanted = set(partitions)
        out: dict[int, Loaded] = {}
        cursor = self.coll.find({"_id": {"$gte": f"{topic}|", "$lt": f"{topic}|~"}}).sort(
            "_id", ASCENDING
        )
        current: int | None = None
        fold: _Fold | None = None
        async with opened(cursor):
            async for doc in cursor:
                part_s, seq_s, part = doc["_id"][len(topic) + 1 :].split("|")
                p = int(part_s)
                if p not in wanted:
                    continue
                if p != current:
                    if fold is not None and current is not None:
                        out[current] = fold.loaded()
                    current, fold = p, _Fold()
                assert fold is not None
                fold.add(int(seq_s), part, doc)
                await asyncio.sleep(0)  # a chunk is up to 2,000 states: let the loop breathe
        if fold is not None and current is not None:
            out[current] = fold.loaded()
        for p in wanted - set(out):
            out[p] = Loaded({}, None, 0, 0, 0)
        return out

    async def append(
        self,
        topic: str,
        partition: int,
        seq: int,
        changed: Iterable[tuple[str, State | None]],
        *,
        offset: int,
        watermark: int,
        snapshot: bool = False,
    ) -> None:
        prefix = f"{_log_prefix(topic, partition)}{seq:012d}|"
        items = list(changed)
        docs: list[dict[str, Any]] = []
        for i in range(0, len(items), CHUNK):
            # Pairs as documents: FerretDB v1 stores no nested arrays.
            pairs = [{"k": k, "v": _escape_keys(v)} for k, v in items[i : i + CHUNK]]
            docs.append({"_id": f"{prefix}{i // CHUNK:06d}", "s": pairs})
            # Copying a snapshot of 100,000 states is seconds of Python: the loop's other
            # tasks (the consumers' heartbeats among them) get their turn between chunks.
            await asyncio.sleep(0)
        docs.append(
            {
                "_id": prefix + COMMIT,
                "offset": offset,
                "wm": watermark,
                "snapshot": snapshot,
                "n": len(items),
                "at": dt.datetime.now(dt.UTC),
            }
        )
        # Ordered: the commit is written only after all its chunks.
        await self.coll.insert_many(docs, ordered=True)

    async def drop_before(self, topic: str, partition: int, seq: int) -> None:
        prefix = _log_prefix(topic, partition)
        await self.coll.delete_many({"_id": {"$gte": prefix, "$lt": f"{prefix}{seq:012d}"}})


@dataclass
class _Partition:
    states: dict[str, State]
    next_offset: int | None
    watermark: int
    next_seq: int
    commits_since_snapshot: int
    dirty: set[str] = field(default_factory=set)
    flushed_offset: int | None = None
    committed_offset: int | None = None  # what Kafka last accepted for this partition


class KeyedStream:
    """One aiokafka consumer over the processors' topics, in one consumer group."""

    def __init__(
        self,
        name: str,
        group_id: str,
        processors: Sequence[Processor],
        log_collection: AsyncCollection[Any],
        *,
        consumer_kwargs: Mapping[str, Any],
        bootstrap_servers: str,
        dead_letter: Callable[[Meta, bytes | None, bytes | None, str, str], Awaitable[None]],
        flush_interval_s: float = 1.0,
        snapshot_every: int = 64,
        max_records: int = 5000,
        wall_clock: bool = False,
        effect_concurrency: int = 32,
    ) -> None:
        self.name = name
        self.effect_concurrency = effect_concurrency
        self._pending: list[Effect] = []
        self.group_id = group_id
        self.processors = {p.topic: p for p in processors}
        self.log = StateLog(log_collection)
        self.consumer_kwargs = dict(consumer_kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.dead_letter = dead_letter
        self.flush_interval_s = flush_interval_s
        self.snapshot_every = snapshot_every
        self.max_records = max_records
        self.wall_clock = wall_clock
        self.parts: dict[TopicPartition, _Partition] = {}
        self.blocked_by: str | None = None
        self.running = False
        # Set once its first assignment is loaded. `peers`: the keyed streams of the same
        # service, whose states the processors read through shared in-memory indexes (a
        # birthday's tier, a suspension's restoration hours): after a start, none applies
        # records before all have loaded, or a close would see another stream's index empty.
        self.assigned = asyncio.Event()
        self.peers: Sequence[KeyedStream] = ()
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_flush = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.log.coll.create_index([("at", ASCENDING)])  # touch: fail early if down
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.consumer_kwargs,
        )
        self._consumer.subscribe(list(self.processors), listener=_Listener(self))
        await self._consumer.start()
        self.running = True
        self._task = asyncio.create_task(self._run(), name=f"keyed-{self.name}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the loop finish the batch it is in (its effects run and are marked done, so a
        restart neither repeats nor re-publishes them), then flush and commit. A batch held
        by a failing dependency longer than `grace_s` is cancelled: the next owner replays it
        from the last commit, and its effects are idempotent by cause."""
        self.running = False
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                log.warning("keyed stream busy at stop; cancelled", extra={"stream": self.name})
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            except Exception:
                log.exception("keyed stream had stopped on an error")
            self._task = None
        if self._consumer is not None:
            try:
                async with self._lock:
                    await self._commit(await self._flush(list(self.parts)))
            except Exception:
                log.exception("final flush failed; the next owner replays from the last commit")
            await self._consumer.stop()
            self._consumer = None

    def ready_problem(self) -> str | None:
        if not self.running:
            return "keyed stream not running"
        if self._task is not None and self._task.done():
            return "keyed stream stopped"
        waiting = self._waiting_for()
        if waiting:
            return f"waiting for the first assignment of {', '.join(waiting)}"
        return self.blocked_by

    def _waiting_for(self) -> list[str]:
        return [t for p in self.peers if not p.assigned.is_set() for t in p.processors]

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while self.running:
            batches = await self._retry(
                lambda: consumer.getmany(timeout_ms=200, max_records=self.max_records), "fetch"
            )
            if self._waiting_for():
                if not batches:
                    continue  # no closes either (the wall clock's) until every peer is loaded
                await asyncio.gather(*(p.assigned.wait() for p in self.peers))
            commits: dict[TopicPartition, int] = {}
            async with self._lock:
                for tp, records in batches.items():
                    part = self.parts.get(tp)
                    if part is None:
                        continue  # revoked while fetched
                    await self._process(tp, part, records)
                if self.wall_clock:
                    now = int(time.time())
                    for tp, part in self.parts.items():
                        await self._advance(tp, part, now)
                await self._drain()
                if time.monotonic() - self._last_flush >= self.flush_interval_s:
                    commits = await self._retry(lambda: self._flush(list(self.parts)), "flush")
            await self._commit(commits)

    async def _process(self, tp: TopicPartition, part: _Partition, records: list[Any]) -> None:
        proc = self.processors[tp.topic]
        states = part.states
        for i, r in enumerate(records):
            if i % 1000 == 999:
                await asyncio.sleep(0)  # let the HTTP side answer during a long batch
            if part.next_offset is not None and r.offset < part.next_offset:
                continue  # already folded into the loaded state
            meta = Meta(tp.topic, tp.partition, r.offset)
            try:
                event = decode(proc.message, r.value)
                key = proc.key(event)
                if key is None:
                    effects = proc.apply(event, {}, meta)
                else:
                    state = states.get(key)
                    if state is None:
                        state = {}
                    effects = proc.apply(event, state, meta)
                    if state:  # a key that never had anything to keep stays out of the log
                        states[key] = state
                        part.dirty.add(key)
            except InvalidEvent as exc:
                dead = partial(self.dead_letter, meta, r.key, r.value, exc.reason, "invalid")
                await self._retry(dead, "dlq")
                part.next_offset = r.offset + 1
                continue
            except Exception as exc:
                # `apply` is pure: what fails there fails the same way every time, so the
                # event is poison for this rule, not a passing outage. It goes to the
                # dead-letter topic with the error, and the stream goes on.
                log.exception("event rejected by its processor", extra={"offset": r.offset})
                reason = f"{type(exc).__name__}: {exc}"
                dead = partial(self.dead_letter, meta, r.key, r.value, reason, "rejected")
                await self._retry(dead, "dlq")
                part.next_offset = r.offset + 1
                continue
            cause = tracing.Cause(tp.topic, tp.partition, r.offset, r.timestamp)
            self._pending.extend(_bound(e, cause) for e in effects)
            part.next_offset = r.offset + 1
            seconds = event.occurred_at.seconds  # type: ignore[attr-defined]
            if seconds > part.watermark:
                await self._advance(tp, part, seconds, cause)
        RECORDS.labels(self.name, tp.topic).inc(len(records))

    async def _advance(
        self,
        tp: TopicPartition,
        part: _Partition,
        seconds: int,
        cause: tracing.Cause | None = None,
    ) -> None:
        """Move the partition's watermark; `cause` is the record that moved it (None: the
        wall clock), named as the cause of what the close publishes."""
        if seconds <= part.watermark:
            return
        before, part.watermark = part.watermark, seconds
        if before == 0:
            return  # the first event of a partition closes nothing: there is no "before"
        proc = self.processors[tp.topic]
        closed = proc.close(part.states, before, seconds)
        self._pending.extend(closed if cause is None else [_bound(e, cause) for e in closed])
        # What a close changed in the states must reach the log too, or a restart forgets it.
        touched = getattr(proc, "take_touched", None)
        if touched is not None:
            part.dirty.update(k for k in touched() if k in part.states)

    async def _drain(self) -> None:
        """Run the effects of what was just folded, up to `effect_concurrency` at a time.
        Each is idempotent by its cause and retried until it succeeds; all are done before
        the state that caused them is flushed and its offset committed."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        gate = asyncio.Semaphore(self.effect_concurrency)
        free: list[Effect] = []
        chains: dict[str, list[Effect]] = {}
        for e in pending:
            if isinstance(e, InOrder):
                chains.setdefault(e.key, []).append(e)
            else:
                free.append(e)

        async def one(effect: Effect) -> None:
            async with gate:
                await self._retry(effect, "effect")

        async def chain(effects: list[Effect]) -> None:
            for effect in effects:
                await one(effect)

        await asyncio.gather(*(one(e) for e in free), *(chain(c) for c in chains.values()))

    async def _retry(self, step: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Until it succeeds: a failing dependency holds the stream, nothing is skipped."""
        backoff = 0.2
        while True:
            try:
                result = await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.blocked_by = f"{what}: {type(exc).__name__}: {exc}"[:300]
                log.exception("keyed stream held by a failure; retrying", extra={"step": what})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.blocked_by = None
            return result

    # -- persistence -----------------------------------------------------------------------

    async def _flush(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        await self._drain()
        commits: dict[TopicPartition, int] = {}
        for tp in tps:
            part = self.parts.get(tp)
            if part is None or part.next_offset is None:
                continue
            WATERMARK.labels(self.name, tp.topic, str(tp.partition)).set(part.watermark)
            if not part.dirty and part.flushed_offset == part.next_offset:
                if part.committed_offset != part.next_offset:
                    # Nothing new to log, but Kafka has not taken the offset (a commit refused
                    # during a rebalance, or a partition just loaded): tell it again, or the
                    # group's lag stays up with nothing left to read.
                    commits[tp] = part.next_offset
                continue
            snapshot = part.commits_since_snapshot + 1 >= self.snapshot_every
            changed: Iterable[tuple[str, State | None]]
            if snapshot:
                changed = list(part.states.items())
            else:
                changed = [(k, part.states.get(k)) for k in part.dirty]
            # Each attempt takes a new sequence number. One that failed may still have been
            # written, whole or in part (the store went away before it answered): the same
            # `_id`s again would be refused as duplicates forever. Its chunks without their
            # commit are skipped by the fold; a complete one is repeated by this one, harmlessly.
            seq = part.next_seq
            part.next_seq += 1
            await self.log.append(
                tp.topic,
                tp.partition,
                seq,
                changed,
                offset=part.next_offset,
                watermark=part.watermark,
                snapshot=snapshot,
            )
            part.dirty = set()
            part.flushed_offset = part.next_offset
            if snapshot:
                part.commits_since_snapshot = 0
                await self.log.drop_before(tp.topic, tp.partition, seq)
            else:
                part.commits_since_snapshot += 1
            commits[tp] = part.next_offset
        self._last_flush = time.monotonic()
        return commits

    async def _commit(self, commits: dict[TopicPartition, int]) -> None:
        """Tell Kafka too (for lag metrics and tools). The state log is what a new owner
        resumes from, so a commit refused during a rebalance loses nothing."""
        if not commits or self._consumer is None:
            return
        try:
            await self._consumer.commit(commits)
        except Exception as exc:
            log.warning("offset commit refused", extra={"stream": self.name, "error": str(exc)})
            return
        for tp, offset in commits.items():
            part = self.parts.get(tp)
            if part is not None:
                part.committed_offset = offset

    async def _assign(self, assigned: Iterable[TopicPartition]) -> None:
        async with self._lock:
            await self._load(assigned)
        self.assigned.set()

    async def _load(self, assigned: Iterable[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        todo = [tp for tp in assigned if tp.topic in self.processors and tp not in self.parts]
        by_topic: dict[str, list[int]] = {}
        for tp in todo:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, partitions in by_topic.items():
            loaded_all = await self._retry(partial(self.log.load_many, topic, partitions), "load")
            for p, loaded in sorted(loaded_all.items()):
                tp = TopicPartition(topic, p)
                self.parts[tp] = _Partition(
                    loaded.states,
                    loaded.offset,
                    loaded.watermark,
                    loaded.next_seq,
                    loaded.commits_since_snapshot,
                    flushed_offset=loaded.offset,
                )
                on_load = getattr(self.processors[topic], "loaded", None)
                if on_load is not None:
                    # e.g. rebuild an in-memory index of the states; the effects it returns
                    # (what a peer decided without this partition's states) run with the
                    # next batch's, before anything is flushed or committed
                    self._pending.extend(on_load(loaded.states) or ())
                if loaded.offset is not None:
                    consumer.seek(tp, loaded.offset)
            log.info(
                "partitions assigned",
                extra={
                    "stream": self.name,
                    "topic": topic,
                    "partitions": len(partitions),
                    "states": sum(len(x.states) for x in loaded_all.values()),
                },
            )

    async def _revoke(self, revoked: Iterable[TopicPartition]) -> None:
        tps = [tp for tp in revoked if tp in self.parts]
        async with self._lock:
            commits = await self._retry(lambda: self._flush(tps), "flush")
            for tp in tps:
                del self.parts[tp]
        await self._commit(commits)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stream: KeyedStream) -> None:
        self.stream = stream

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.stream._revoke(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.stream._assign(assigned)
