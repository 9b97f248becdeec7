"""The one stream runtime: a service's co-partitioned inputs on Quix Streams, with its state in
the engine's state store (RocksDB, changelog topics) next to the partitions that feed it.

Why Quix Streams and not faust-streaming: the side-by-side spike in `bench/engine_spike.py`
(README, "Stream engine") — on the warnings case, Quix decided every decision right at
~19,000 records/s, faust about 1,700/s with thousands wrong, because faust reads a service's
topics without aligning them in time (a call was decided before the profile published before
it).

What this layer adds to the engine, and why each is here rather than in the services:

- **One pipeline per service**: every input topic is read by one consumer group; the topics are
  concatenated (`StreamingDataFrame.concat`), so the engine hands a partition's records of all
  of them to one handler in timestamp order (its time alignment), with one state store.
  Inputs must be co-partitioned (`hvc.common.topics.PARTITIONS`); `run` refuses them otherwise.
- **Decode, validate, dead-letter**: an undecodable or invalid record, or one a handler refuses
  (`InvalidEvent`), goes to `<topic>.dlq` with the reason, and the stream goes on.
- **State beyond the record's key**: a handler may read and write any customer's state of its
  partition (`Context.state`), and the partition's own (its timers), through the
  transaction the engine opened for the partition — the engine's per-key `State` covers only
  the key of the record in hand. That is the extension point this relies on
  (`Checkpoint.get_store_transaction`), in `_Partition` alone.
- **Timers** (`Timers`): due times kept in the partition's state, fired as the partition's event
  time passes them; the engine has windows but no timers.
- **Outputs** go through the engine's producer, flushed at its checkpoint before offsets are
  committed (and inside its transaction when `exactly_once`).
- **Views** (`Context.view`): what the APIs read, upserted in MongoDB by `_id` in one bulk write
  per collection at each checkpoint, before the offsets (a `BatchingSink`); a store that does
  not answer holds the checkpoint until it does (and past a bound, fails the run, which
  starts again from the last commit), so nothing is lost and no state moves ahead of its
  views.
- **Bounded checkpoints**: a checkpoint that holds `checkpoint_max_writes` states, views and
  outputs is committed after the record in hand, not at its interval (the engine's own
  per-checkpoint record count, set on that checkpoint), so a burst's memory is one record's.
- **Runs that fail start again** (`StreamApp.run`): a member removed from its group while
  the broker was away, a store away too long; the new run resumes from the committed
  offsets and the changelogs, and /readyz says why meanwhile.

Handlers are pure apart from the context: no I/O, no clock but the record's.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge
from pymongo import DeleteOne, ReplaceOne, UpdateOne

from hvc.common import dlq, topics, tracing
from hvc.common.codec import InvalidEvent, decode
from hvc.common.mongo import insert_new

log = logging.getLogger(__name__)

State = dict[str, Any]
Timer = tuple[int, str, str, Any]  # due (epoch ms), state key, what, its argument
PARTITION_PREFIX = b"\x00partition"
# The source of a tick that carries a service's event time (a replayed or simulated feed), not
# the wall clock's: "event-time:<group>@<host>", followed only by the pipelines of that group
# (and its views rebuild), made with `event_ticks`, which follow no other tick.
EVENT_TICKS = "event-time:"


def event_tick_source(group: str) -> str:
    """The prefix of the event-time ticks of a service's pipeline group (hvc.common.service
    stream_group): every replica's ticks carry it, no other deployment's do."""
    return f"{EVENT_TICKS}{group}@"


STATE = "state"  # the pipeline's stream id in the engine: its state store's name
MAX_TIMER_ROUNDS = 10_000  # a timer that keeps setting itself due is a bug, not a loop

RECORDS = Counter("hvc_stream_records_total", "Records handled", ["service", "topic"])
EVENT_TIME = Gauge(
    "hvc_stream_event_time_seconds", "A partition's event time", ["service", "partition"]
)
VIEW_WRITES = Counter(
    "hvc_stream_view_writes_total", "Documents written to views", ["service", "collection"]
)
EARLY_COMMITS = Counter(
    "hvc_stream_early_commits_total",
    "Checkpoints committed after the record in hand, before their interval, because they held "
    "`checkpoint_max_writes` writes",
    ["service"],
)
VIEW_SECONDS = Counter(
    "hvc_stream_view_write_seconds_total",
    "Time the checkpoints spent writing views (retries included): the store's share of the "
    "stream's time",
    ["service", "collection"],
)


class KV(Protocol):
    """A partition-scoped part of the engine's state (the engine's `State` has this shape)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


class DictKV(dict[str, Any]):
    """A `KV` in memory: for the pure tests of handlers and for reference folds. Values go
    through JSON as in the engine's store (a tuple comes back a list, a value read is a copy),
    so that a test sees what a handler sees in production: an outage's redelivery check that
    compared a stored list with a tuple passed every test and failed in every deployment."""

    def get(self, key: str, default: Any = None) -> Any:
        raw = dict.get(self, key)
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.pop(key, None)


class Timers:
    """Due times of one partition, kept in its state next to its customers': `now` is the
    partition's event time, `buckets` the sorted steps (a minute by default) that hold timers,
    `n<step>` how many a step holds and `e<step>:<i>` each of them, so that setting a timer
    writes two small keys whatever the population. `advance` returns, in due order, the timers
    of every step that event time has left behind (at most a step late, in event time). A
    pipeline with few timers that must fire on time (complaints' SLA milestones) takes a step
    of 1 ms: each timer fires once event time reaches it."""

    STEP = 60_000

    def __init__(self, kv: KV, step_ms: int = STEP) -> None:
        self.kv = kv
        self.step = step_ms
        self._buckets: list[int] | None = None
        self._now: int | None = None

    @property
    def now(self) -> int:
        if self._now is None:
            self._now = int(self.kv.get("now") or 0)
        return self._now

    def buckets(self) -> list[int]:
        if self._buckets is None:
            self._buckets = list(self.kv.get("buckets") or [])
        return self._buckets

    def schedule(self, timers: Iterable[Timer]) -> None:
        for due, key, what, arg in timers:
            bucket = due // self.step * self.step
            n = self.kv.get(f"n{bucket}") or 0
            self.kv.set(f"e{bucket}:{n}", [due, key, what, arg])
            self.kv.set(f"n{bucket}", n + 1)
            if n == 0:
                buckets = self.buckets()
                bisect.insort(buckets, bucket)
                self.kv.set("buckets", buckets)

    def advance(self, ts: int) -> list[Timer]:
        """Move event time to `ts` (never back) and take the timers due by then, including
        ones set since the last call that are already due."""
        if ts > self.now:
            self._now = ts
            self.kv.set("now", ts)
        out: list[Timer] = []
        buckets = self.buckets()
        # every timer of the step is due (a step of 1 ms: due at `now` or before)
        while buckets and buckets[0] + self.step - 1 <= self.now:
            bucket = buckets.pop(0)
            n = self.kv.get(f"n{bucket}") or 0
            entries = [self.kv.get(f"e{bucket}:{i}") for i in range(n)]
            for i in range(n):
                self.kv.delete(f"e{bucket}:{i}")
            self.kv.delete(f"n{bucket}")
            self.kv.set("buckets", buckets)
            out.extend(
                sorted((int(d), str(k), str(w), a) for d, k, w, a in entries if d is not None)
            )
        return out


@dataclasses.dataclass(frozen=True)
class Record:
    """Where the record in hand came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def cause(self) -> list[tuple[str, bytes]]:
        """The headers every output of this record carries (see hvc.common.tracing)."""
        return tracing.Cause(self.topic, self.partition, self.offset, self.timestamp_ms).headers()


ViewMode = Literal["replace", "fresh", "insert", "set"]


@dataclasses.dataclass(frozen=True)
class View:
    """A read-model write by `_id`: the whole document (`replace`, upserted), or its removal
    (`doc` None); `fresh`: the whole document too, one the stream writes for the first time
    (inserted, and replaced where it exists after all: a views rebuild, a state restored
    without it; cheaper on a store where an insert is, see `MongoViews`); `insert`: the
    document only if there is none (a fact the stream decided once, which the HTTP side may
    move on since: a task it closed); `set`: these fields of an existing document, nothing if
    there is none."""

    collection: str
    id: str
    doc: Mapping[str, Any] | None
    mode: ViewMode = "replace"

    def apply(self, store: dict[str, dict[str, Any]]) -> None:
        """What this view does to `store` (documents by `_id`) written alone: the in-memory
        model of `MongoViews`' operation for its mode, for tests and tools."""
        if self.doc is None:
            store.pop(self.id, None)
        elif self.mode in ("replace", "fresh"):
            store[self.id] = dict(self.doc)
        elif self.mode == "insert":
            store.setdefault(self.id, dict(self.doc))
        elif self.id in store:  # set: only a document that is there
            store[self.id] |= self.doc


@dataclasses.dataclass(frozen=True)
class Output:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class Context:
    """What a handler may touch while it handles one record or one timer: its partition's
    states, the partition's timers, outputs and views. Writes take effect when the handler
    returns; a handler that raises changes nothing."""

    def __init__(
        self, part: PartitionStore, record: Record, now_ms: int, fired: str | None = None
    ) -> None:
        self._part = part
        self.record = record
        self.now_ms = now_ms  # the partition's event time
        # A timer's fire: its kind, and its outputs say so (tracing.DUE)
        self._due = () if fired is None else (tracing.due(fired, now_ms),)
        self._states: dict[str, State] = {}
        self.outputs: list[Output] = []
        self.views: list[View] = []
        self.timers: list[Timer] = []

    @property
    def partition(self) -> int:
        return self.record.partition

    @property
    def partition_time_ms(self) -> int:
        """The partition's event time as the record in hand moved it: `now_ms` but in a
        timer's fire, where `now_ms` is the timer's due time (the timers of a record fire
        in due order before it is handled)."""
        return self._part.timers.now

    def state(self, key: str) -> State:
        """The state of `key` (a customer id) in this partition, created empty."""
        st = self.existing(key)
        if st is None:
            st = self._states[key] = {}
        return st

    def existing(self, key: str) -> State | None:
        """The state of `key` if this partition has one (None, and nothing created, if not)."""
        if key not in self._states:
            found = self._part.load(key)
            if found is None:
                return None
            self._states[key] = found
        return self._states[key]

    @property
    def kv(self) -> KV:
        """The partition's own state (next to its timers' keys: use keys of your own)."""
        return self._part.kv

    def emit(
        self,
        topic: str,
        key: str,
        message: Message | bytes,
        cause: tracing.Cause | None = None,
    ) -> None:
        """An output, naming the record in hand as its cause, or `cause` (a record the
        handler kept and handles now: a parked filing); in a timer's fire, the timer too."""
        value = message if isinstance(message, bytes) else message.SerializeToString()
        headers = self.record.cause if cause is None else cause.headers()
        self.outputs.append(Output(topic, key, value, (*headers, *self._due)))

    def view(
        self,
        collection: str,
        id_: str,
        doc: Mapping[str, Any] | None,
        mode: ViewMode = "replace",
    ) -> None:
        self.views.append(View(collection, id_, doc, mode))

    def schedule(self, due_ms: int, key: str, what: str, arg: Any = None) -> None:
        self.timers.append((int(due_ms), key, what, arg))

    def _commit(self) -> None:
        for key, st in self._states.items():
            self._part.save(key, st)


class Handler(Protocol):
    """What a service does with its inputs. `handle` folds one decoded record into the
    context; `fire` is called for each due timer, in due order, before the record that moved
    event time past it (a timer `handle` sets that is due already: right after that record).
    Both raise InvalidEvent to dead-letter a record.

    Optional: `timer_step_ms` (the `Timers` step, a minute by default), `last_views` (the
    collections a checkpoint writes after the others: what answers for them) and `before(ctx)`,
    called on every record of a partition, the wall clock's ticks included, after its due
    timers and before the record is handled (work a handler parked in the partition's state
    until something outside the stream allows it: complaints' filings waiting for tiering)."""

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        """When the record happened (its `occurred_at`), which moves the partition's time."""

    def handle(self, ctx: Context, topic: str, message: Any) -> None: ...

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None: ...


class PartitionStore(Protocol):
    """One partition's states: the customers' by key, and the partition's own (`kv`)."""

    kv: KV
    timers: Timers  # over kv, kept decoded between records

    def load(self, key: str) -> State | None: ...
    def save(self, key: str, st: State) -> None: ...


class MemoryPartition:
    """A `PartitionStore` in memory: for pure tests of handlers and reference folds. States
    are kept as JSON, as the engine keeps them: a load is a copy, and a state that JSON cannot
    hold fails here as it would there."""

    def __init__(self, timer_step_ms: int = Timers.STEP) -> None:
        self.kv = DictKV()
        self.timers = Timers(self.kv, timer_step_ms)
        self.states: dict[str, str] = {}

    def load(self, key: str) -> State | None:
        raw = self.states.get(key)
        return None if raw is None else dict(json.loads(raw))

    def save(self, key: str, st: State) -> None:
        self.states[key] = json.dumps(st)


class _QuixPartition:
    """One partition's states in the engine's open transaction for it."""

    def __init__(self, tx: Any, timer_step_ms: int = Timers.STEP) -> None:
        self.tx = tx
        self.kv = tx.as_state(prefix=PARTITION_PREFIX)
        self.timers = Timers(self.kv, timer_step_ms)
        self.saved = 0  # states saved in this transaction

    def load(self, key: str) -> State | None:
        value = self.tx.as_state(prefix=key.encode()).get("s")
        return value if isinstance(value, dict) else None

    def save(self, key: str, st: State) -> None:
        self.saved += 1
        self.tx.as_state(prefix=key.encode()).set("s", st)


Produce = Callable[[str, str | bytes | None, bytes | None, Sequence[Any]], None]


class Pipeline:
    """A service's handler over its inputs: decoding, time, timers and dead letters, with the
    engine reduced to a `PartitionStore` and a `Produce`, so that the same code runs on Quix
    (`StreamApp`) and in pure tests (`MemoryPartition`)."""

    def __init__(self, service: str, inputs: Mapping[str, type[Message]], handler: Handler) -> None:
        self.service = service
        self.handler = handler
        self.messages = dict(inputs)
        # The handler's timer step (`Timers`), and its hook on every record of a partition,
        # the wall clock's ticks included, before the record's own handling (`before`).
        self.timer_step_ms = int(getattr(handler, "timer_step_ms", Timers.STEP))
        self._before = getattr(handler, "before", None)
        self.event_ticks = False  # which ticks of the clock's topic it follows (`of`)
        # Event-time ticks: those of this prefix (its group's: `event_tick_source`, set by the
        # runtime; unset, any), and only those published since this process started — a
        # stale tick is an earlier run's (a views rebuild follows them all: 0).
        self.tick_source = EVENT_TICKS
        self.started_ms = int(time.time() * 1000)
        self._records: dict[str, Any] = {}
        self._times: dict[int, Any] = {}

    @classmethod
    def of(
        cls,
        service: str,
        inputs: Sequence[str],
        handler: Handler,
        *,
        clock: bool = False,
        event_ticks: bool = False,
    ) -> Pipeline:
        """Registry topics: their message types, refused unless co-partitioned. `clock`: the
        wall clock's topic too (`topics.CLOCK`, published by `ServiceRuntime.stream`), whose
        records move each partition's time when the inputs bring none; `event_ticks`: its
        ticks that carry event time (`EVENT_TICKS`) instead of the wall clock's."""
        messages: dict[str, type[Message]] = {}
        for name in [*inputs, *([topics.CLOCK] if clock else [])]:
            spec = topics.spec(name)
            if spec.message is None:
                raise ValueError(f"{name} is a dead-letter topic")
            messages[name] = spec.message
        topics.copartitioned({t: topics.spec(t).partitions for t in messages})
        pipeline = cls(service, messages, handler)
        pipeline.event_ticks = event_ticks
        return pipeline

    def step(
        self,
        part: PartitionStore,
        record: Record,
        value: bytes | None,
        produce: Produce,
    ) -> list[View]:
        """One record: decode it, fire the timers its time passed, handle it, fire the ones it
        set that are due already; outputs go to `produce`, and the views it wrote come back
        (for the sink)."""
        topic = record.topic
        try:
            message: Any = decode(self.messages[topic], value)
            if topic == topics.CLOCK:  # the clock: time, and nothing to handle
                event_tick = message.source.startswith(EVENT_TICKS)
                if event_tick != self.event_ticks:
                    return []  # the other clock's tick
                if event_tick and not message.source.startswith(self.tick_source):
                    return []  # another deployment's event time
                if event_tick and record.timestamp_ms < self.started_ms:
                    # An event clock's tick from before this process: an earlier run of a
                    # feed (the live ones tick again within a second).
                    return []
                event_ms = int(message.occurred_at.ToMilliseconds())
            else:
                event_ms = self.handler.event_time_ms(topic, message, record)
        except InvalidEvent as exc:
            self._dead(record, value, exc.reason, "invalid", produce)
            return []
        timers = part.timers
        views = self._fire_due(part, record, event_ms, produce)
        if self._before is not None:
            ctx = Context(part, record, timers.now)
            self._before(ctx)
            views += self._apply(ctx, timers, produce)
        if topic == topics.CLOCK:
            return views
        ctx = Context(part, record, timers.now)  # moved to event_ms, never back
        try:
            self.handler.handle(ctx, topic, message)
        except InvalidEvent as exc:
            self._dead(record, value, exc.reason, "invalid", produce)
            return views
        except Exception as exc:  # a rule that cannot take this record: it, not the stream
            log.exception("handler failed", extra={"topic": topic, "offset": record.offset})
            self._dead(record, value, f"{type(exc).__name__}: {exc}", "handler", produce)
            return views
        self._count(topic, record.partition, timers.now)
        views += self._apply(ctx, timers, produce)
        # Timers the record set that are due already (an outage's copy that came after its
        # notices' time) fire with it: the partition's next record may be long in coming (the
        # last of a feed), and what fires must not depend on whether one comes.
        return views + self._fire_due(part, record, timers.now, produce)

    def _fire_due(
        self, part: PartitionStore, record: Record, event_ms: int, produce: Produce
    ) -> list[View]:
        """Move the partition's time to `event_ms` and fire the timers it passed, in due
        order; timers a fire sets that are due already (a daily close after a quiet week)
        fire too."""
        timers = part.timers
        views: list[View] = []
        for _ in range(MAX_TIMER_ROUNDS):
            due_now = timers.advance(event_ms)
            if not due_now:
                break
            for due, key, what, arg in due_now:
                ctx = Context(part, record, due, what)
                try:
                    self.handler.fire(ctx, key, what, arg)
                except InvalidEvent as exc:  # a timer a rule cannot take: logged, not retried
                    log.error(
                        "timer refused", extra={"key": key, "what": what, "reason": exc.reason}
                    )
                    continue
                views += self._apply(ctx, timers, produce)
        else:
            log.error("timers still due after %d rounds", MAX_TIMER_ROUNDS)
        return views

    def _count(self, topic: str, partition: int, now_ms: int) -> None:
        counter = self._records.get(topic)
        if counter is None:
            counter = self._records[topic] = RECORDS.labels(self.service, topic)
        counter.inc()
        gauge = self._times.get(partition)
        if gauge is None:
            gauge = self._times[partition] = EVENT_TIME.labels(self.service, str(partition))
        gauge.set(now_ms / 1000)

    @staticmethod
    def _apply(
        ctx: Context,
        timers: Timers,
        produce: Produce,
    ) -> list[View]:
        ctx._commit()  # the pipeline owns the context's life
        timers.schedule(ctx.timers)
        for out in ctx.outputs:
            produce(out.topic, out.key, out.value, out.headers)
        return ctx.views

    def _dead(
        self,
        record: Record,
        value: bytes | None,
        reason: str,
        error: str,
        produce: Produce,
    ) -> None:
        headers, value = dlq.dead_letter(
            value,
            reason=reason,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            consumer=self.service,
            original=record.headers,
        )
        produce(dlq.dlq_topic(record.topic), record.key, value, headers)
        dlq.DEAD_LETTERS.labels(topic=record.topic, error=error).inc()
        log.warning(
            "dead-lettered record",
            extra={"topic": record.topic, "offset": record.offset, "reason": reason},
        )


ViewWriter = Callable[[str, list[View]], None]


class ViewStoreDown(RuntimeError):
    """The views' store did not take a checkpoint's writes within `view_hold_s`."""


class PartitionsLost(RuntimeError):
    """The group took the partitions away mid-checkpoint: its views are not written."""


# How long a checkpoint's views may be held on a rebalance. The engine flushes a sink there in
# a thread of its own under a budget (a fifth of max.poll.interval.ms: 60 s), and on its end
# commits nothing and leaves the thread running: a write retried past it could land after the
# new owner's newer views of the same documents and leave them stale. 20 s of retries and one
# write's own timeout (`MongoViews.timeout_s`, 30 s) stay inside that budget.
REVOKE_VIEW_HOLD_S = 20.0


def _view_sink(
    service: str,
    write: ViewWriter,
    hold_s: float,
    sleep: Callable[[float], None] = time.sleep,
    last: Sequence[str] = (),
    revoke_hold_s: float = REVOKE_VIEW_HOLD_S,
) -> Any:
    from quixstreams.sinks import BaseSink

    class ViewSink(BaseSink):
        """Views in one bulk write per collection at each checkpoint, before its offsets; a
        whole document written supersedes what the checkpoint wrote of its `_id` before,
        other writes keep their order, so the outcome is the one of writing them one by one.

        One list for the checkpoint, in the order its records were processed: not the
        engine's `BatchingSink`, which keeps a batch per input partition and writes them one
        after the other. A key's records come from several input partitions (a profile on
        one topic, its usage on another), so a view written from an earlier record of one
        partition could land after a later one's of another and stay stale (the two-replica
        test caught it: a customer's view kept its profile's, without the usage after it).

        A store that does not answer holds the checkpoint: the write is retried, the stream
        waits (and /readyz says the store is down), nothing is committed meanwhile. Past
        `hold_s` the write fails, which fails the engine's run; `StreamApp` starts it again
        from the last commit. Not the engine's own backpressure (`SinkBackpressureError`):
        it clears every partition's read-ahead but rewinds only those that had records in
        the checkpoint, so a partition read ahead and not yet reached lost those records
        (the fault suite's store restart lost 9 warnings through it)."""

        def __init__(self) -> None:
            super().__init__()
            self._views: list[View] = []
            self._engine_thread: int | None = None  # the thread that hands records over
            self._lost = False

        def __repr__(self) -> str:
            return "<ViewSink>"

        def add(
            self,
            value: Any,
            key: Any,
            timestamp: int,
            headers: Any,
            topic: str,
            partition: int,
            offset: int,
        ) -> None:
            self._engine_thread = threading.get_ident()
            self._views.append(value)

        def flush(self) -> None:
            """At a checkpoint's commit, on the engine's thread; on a rebalance, in a thread
            the engine abandons past its budget: held `revoke_hold_s` at most there."""
            views, self._views = self._views, []  # dropped if the write fails: replayed
            if self._lost:
                self._lost = False
                raise PartitionsLost("partitions lost: the checkpoint's views are given up")
            revoking = threading.get_ident() != self._engine_thread
            self.write(views, min(hold_s, revoke_hold_s) if revoking else hold_s)

        def on_paused(self) -> None:
            self._views.clear()

        def give_up(self) -> None:
            """The partitions were lost (the member's session expired; the engine's
            assignment is eager, so all of them): another member replays this checkpoint's
            records from the last commit, and views written from them now could land after
            its newer ones. The next flush writes nothing and fails the run, which starts
            again from the last commit (as a commit refused to a removed member does)."""
            self._lost = True

        def write(self, views: list[View], hold: float = hold_s) -> None:
            by_collection: dict[str, list[View]] = {}
            for v in views:
                by_collection.setdefault(v.collection, []).append(v)
            # `last`: collections whose documents answer for others (complaints' outcomes,
            # which the HTTP side waits for): written once the others are.
            order = sorted(by_collection, key=lambda c: c in last)
            for collection in order:
                coalesced = _coalesced(by_collection[collection])
                started = time.perf_counter()
                self._write(collection, coalesced, hold)
                VIEW_SECONDS.labels(service, collection).inc(time.perf_counter() - started)
                VIEW_WRITES.labels(service, collection).inc(len(coalesced))

        def _write(self, collection: str, views: list[View], hold: float) -> None:
            started, pause = time.monotonic(), 0.2
            while True:
                try:
                    write(collection, views)
                    return
                except Exception as exc:
                    waited = time.monotonic() - started
                    if waited >= hold:
                        raise ViewStoreDown(
                            f"views of {collection} not written within {hold:.0f} s"
                        ) from exc
                    log.warning(
                        "view write failed: the checkpoint waits and retries",
                        extra={"collection": collection, "error": repr(exc)[:300]},
                    )
                    sleep(min(pause, hold - waited))
                    pause = min(pause * 2, 5.0)

    return ViewSink()


@dataclasses.dataclass
class EngineSettings:
    bootstrap_servers: str
    consumer_group: str
    state_dir: str
    commit_interval_s: float = 1.0
    exactly_once: bool = False
    client_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # connection
    session_timeout_s: float = 15.0
    fetch_wait_ms: int = 50
    # What a fetch waits for (up to `fetch_wait_ms`) before the broker answers it: 1 (the
    # client's default) answers as soon as a record is there, so under a steady load each
    # consumer fetches as fast as its round trips go. 64 KiB at 2,000 events/s took the
    # broker's CPU from 91 to 52 s in 5 minutes, but publish → decision p99 from 4.6 to 6.7
    # s: a partition group of the engine's time alignment waits a fetch each time one of its
    # inputs runs dry (README, Benchmarks).
    fetch_min_bytes: int = 1
    # How long the engine's consumer waits for a batch. confluent-kafka (before 2.13) returns a
    # batch only when it is full (the engine asks for its read-ahead per partition) or this
    # expires, so on a quiet stream each record waits up to this long per hop: the engine's
    # 1 s made an outage's notices take 2.5 s through two hops (README, Benchmarks). 50 ms
    # costs a poll call per 50 ms on an idle stream.
    poll_timeout_s: float = 0.05
    # How long a checkpoint waits for the views' store before the run fails and starts again
    # from the last commit; under the consumer's max.poll.interval.ms (300 s), past which the
    # group would hand its partitions to another member meanwhile.
    view_hold_s: float = 120.0
    # The pause before a failed run starts again, doubling to `restart_max_s`.
    restart_min_s: float = 1.0
    restart_max_s: float = 30.0
    # Memory: records read ahead per partition for the time alignment, and librdkafka's
    # read-ahead in all (its default, 64 MiB, holds a whole backlog of small records). The
    # records read ahead are a budget for the whole pipeline, shared by its input partitions
    # (`read_ahead`): a pipeline of 14 inputs would otherwise hold 14 times a one-input's.
    # `buffer_per_partition` set: that many per partition instead.
    buffer_records: int = 40_000
    buffer_per_partition: int | None = None
    fetch_queue_kib: int = 8192
    # RocksDB: memtables per partition (64 MiB by default, each filled before a flush, so
    # memory grew with what a backlog wrote) and one block cache for the process. A miss in
    # the cache reads the OS's page cache, not the disk, on a node that has the memory; 16
    # MiB with the checkpoint bound below took warnings' peak from 354 to 291 MiB on the
    # 100,000-customer backlog at the same rate (README, Benchmarks).
    write_buffer_mib: int = 4
    block_cache_mib: int = 16
    # A checkpoint holds what it wrote until it commits: states in the engine's transactions
    # and their changelog, views in the sink, outputs in the producer. Past this many of
    # them it is committed after the record in hand rather than at its interval, so a burst
    # (a day's close fires thousands of customers' warnings from one record) holds memory
    # for one record's writes, not for a whole interval's. 0: at the interval only.
    checkpoint_max_writes: int = 5_000
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # State kept in changelog topics (recovered from them on another member); off only for a
    # run whose state is thrown away at its end (a views rebuild).
    changelog: bool = True


def read_ahead(settings: EngineSettings, inputs: int) -> int:
    """Records read ahead per input partition: `buffer_per_partition` if set, else the
    pipeline's budget over its inputs' partitions (all of them: one replica may hold them
    all), between 100 and 300. With 1,000 at most, tiering (3 inputs) held 1,000 each and
    peaked 26 MiB higher draining a backlog, at about the same rate (one run each)."""
    if settings.buffer_per_partition is not None:
        return settings.buffer_per_partition
    share = settings.buffer_records // max(1, inputs * topics.PARTITIONS)
    return max(100, min(300, share))


class StreamApp:
    """A service's pipeline on Quix Streams: `run()` blocks (the engine's loop needs the main
    thread for its signal handlers) until `stop()` or SIGTERM, committing on the way out."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: EngineSettings,
        views: ViewWriter | None = None,
        on_processed: Callable[[str, int, int], None] | None = None,
        publish: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.views = views
        self.on_processed = on_processed
        self.publish = publish  # False: outputs and dead letters dropped (a views rebuild)
        self.error: BaseException | None = None
        self.runs = 0  # how many times the engine has been started
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._build()

    def _build(self) -> None:
        """A new engine over the pipeline: at start, and after a run failed (its consumer,
        producer and state store are closed by then; the new one resumes from the group's
        committed offsets and the changelogs)."""
        from quixstreams.state.rocksdb import RocksDBOptions

        settings, pipeline = self.settings, self.pipeline
        self._parts: dict[int, _QuixPartition] = {}
        self._checkpoint: Any = None  # the engine's checkpoint the counts below are of
        self._writes = 0  # states, views and outputs written in it
        self._early = EARLY_COMMITS.labels(pipeline.service)
        self._no_early = False  # the engine cannot be asked to (said once)
        self.app = _application()(
            broker_address=settings.bootstrap_servers,
            consumer_group=settings.consumer_group,
            auto_offset_reset=settings.auto_offset_reset,
            state_dir=settings.state_dir,
            commit_interval=settings.commit_interval_s,
            consumer_poll_timeout=settings.poll_timeout_s,
            processing_guarantee="exactly-once" if settings.exactly_once else "at-least-once",
            loglevel=None,
            # the inputs exist (the registry's, made by the bootstrap or Strimzi); what this
            # creates is the state's changelog topics, named after the group and its inputs
            auto_create_topics=True,
            use_changelog_topics=settings.changelog,
            on_message_processed=self.on_processed,
            # Java's partitioner, as upstream producers and aiokafka use: what a service
            # publishes lands where a consumer of its key expects it.
            producer_extra_config={
                "partitioner": "murmur2_random",
                "socket.nagle.disable": True,
                **settings.client_config,
            },
            consumer_extra_config={
                # A broker answers a connection's requests in order, so each watermark query
                # the engine makes per changelog partition on assignment waited behind a
                # fetch long-poll (500 ms by default): 25 s to start on 60 partitions.
                "fetch.wait.max.ms": settings.fetch_wait_ms,
                "fetch.min.bytes": settings.fetch_min_bytes,
                "socket.nagle.disable": True,
                "queued.max.messages.kbytes": settings.fetch_queue_kib,
                "session.timeout.ms": int(settings.session_timeout_s * 1000),
                "heartbeat.interval.ms": int(min(3.0, settings.session_timeout_s / 3) * 1000),
                **settings.client_config,
            },
            max_partition_buffer_size=read_ahead(settings, len(pipeline.messages)),
            rocksdb_options=RocksDBOptions(
                write_buffer_size=settings.write_buffer_mib << 20,
                target_file_size_base=settings.write_buffer_mib << 20,
                block_cache_size=settings.block_cache_mib << 20,
            ),
        )
        frames = [
            self.app.dataframe(
                self.app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
            )
            for name in pipeline.messages
        ]
        merged = frames[0]
        for other in frames[1:]:
            merged = merged.concat(other)
        # The state's name (its changelog topic: changelog__<group>--<STATE>--default) is the
        # pipeline's, not its inputs' joined: the engine would name it by every input topic,
        # so that an input added in a release starts from an empty state, and a long group
        # name with a dozen inputs passes Kafka's 255-character limit. The same clone the
        # engine makes when it concatenates branches of one topic, with a stream id of ours.
        merged = merged.__dataframe_clone__(stream=merged.stream, stream_id=STATE)
        merged.register_store()
        self._merged = merged
        stepped = merged.apply(self._step, metadata=True, expand=True)
        if self.views is not None:
            sink = _view_sink(
                pipeline.service,
                self.views,
                settings.view_hold_s,
                self._pause,
                getattr(pipeline.handler, "last_views", ()),
            )
            self.app.lost_hooks.append(sink.give_up)
            stepped.sink(sink)

    def _pause(self, seconds: float) -> None:
        """A wait the engine's thread makes (a view write retried), cut short by `stop()`."""
        if self._stopping.wait(seconds):
            raise RuntimeError("stopping")

    def _step(self, value: bytes | None, key: bytes | None, ts: int, headers: Any) -> list[View]:
        from quixstreams import message_context

        mc = message_context()
        ctx = self._merged.processing_context
        tx = ctx.checkpoint.get_store_transaction(
            stream_id=self._merged.stream_id, partition=mc.partition
        )
        record = Record(mc.topic, mc.partition, mc.offset, ts, key, tuple(headers or ()))
        # One store per partition and transaction: its timers' index stays decoded between
        # records, and a new checkpoint (a new transaction) starts from what was committed.
        part = self._parts.get(mc.partition)
        if part is None or part.tx is not tx:
            part = self._parts[mc.partition] = _QuixPartition(tx, self.pipeline.timer_step_ms)
        if ctx.checkpoint is not self._checkpoint:
            self._checkpoint, self._writes = ctx.checkpoint, 0
        saved = part.saved
        views = self.pipeline.step(part, record, value, self._produce)
        self._writes += part.saved - saved + len(views)
        if 0 < self.settings.checkpoint_max_writes <= self._writes:
            self._commit_after_this_record(ctx.checkpoint)
        return views

    def _commit_after_this_record(self, checkpoint: Any) -> None:
        """Have the engine commit the checkpoint once the record in hand is processed (its
        loop commits after each record a checkpoint that has expired): the checkpoint's
        `commit_every` (the engine's count of records per checkpoint, fixed per application
        otherwise) set to one record. An engine without it commits at the interval."""
        if self._no_early or getattr(checkpoint, "_commit_every", None) == 1:
            return
        if not hasattr(checkpoint, "_commit_every"):
            log.warning("the engine's checkpoint has no commit_every: committed at its interval")
            self._no_early = True
            return
        checkpoint._commit_every = 1
        self._early.inc()

    def _produce(
        self, topic: str, k: str | bytes | None, v: bytes | None, h: Sequence[Any]
    ) -> None:
        self._writes += 1
        if not self.publish:
            return
        self._merged.processing_context.producer.produce(
            topic=topic, key=k, value=v, headers=list(h)
        )

    def run(self) -> None:
        """Run until stopped, starting the engine again after a run that failed. (That the
        inputs are co-partitioned on the broker is checked by the caller:
        `ServiceRuntime.start`, over all of a service's inputs, with its credentials.)

        A run fails when the engine cannot go on as it is: its member was removed from the
        group while the broker was away longer than the session (its commit is refused:
        "unknown member", or its partitions were lost before the checkpoint's views were
        written: `PartitionsLost`), or the views' store held a checkpoint past
        `view_hold_s`. Nothing of the failed run's last checkpoint was committed, so the next
        run replays it: every effect is idempotent by its cause. Meanwhile /readyz says why,
        and the pause before the next run doubles up to `restart_max_s`."""
        pause = self.settings.restart_min_s
        while not self._stopping.is_set():
            self.runs += 1
            try:
                self.app.run()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self.error = exc
                log.exception("stream run failed; starting it again", extra={"in_s": pause})
                if self._stopping.wait(pause):
                    return
                pause = min(pause * 2, self.settings.restart_max_s)
                self._build()
                self.error = None
                continue
            return  # stopped

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the loop (it commits on the way out) and wait for it."""
        self._stopping.set()
        self.app.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def start(self) -> None:
        """Run in a thread of its own: for a process whose main thread serves HTTP (and owns
        the signals, stopping this through `stop`)."""

        def loop() -> None:
            try:
                self.run()
            except BaseException as exc:
                self.error = exc
                log.exception("stream stopped on an error")

        self._thread = threading.Thread(target=loop, name="stream", daemon=True)
        self._thread.start()

    def problem(self) -> str | None:
        """Why the stream is not processing now (for /readyz), or None."""
        if self.error is not None:
            return f"stream failed: {type(self.error).__name__}: {self.error}"[:300]
        if self._thread is None or not self._thread.is_alive():
            return "stream not running"
        if self.app._state_manager.recovery_required:  # the engine restores state
            return "state recovery in progress"
        return None


def rebuild_views(
    pipeline: Pipeline,
    settings: EngineSettings,
    views: ViewWriter,
    targets: Mapping[tuple[str, int], int],
    idle_s: float = 10.0,
) -> dict[str, int]:
    """Replay the pipeline's inputs from their beginning into its views, publishing nothing,
    on a group and a state of its own (`settings`: no changelog, a state directory thrown
    away after), until every partition's record before its offset in `targets` (the end
    offsets when the rebuild started) is handled, or nothing came for `idle_s` after the last
    record (a partition whose last offsets hold no record). Returns what it handled and
    wrote. The service's own group, state and changelogs are not touched."""
    counts = {"records": 0}
    written: dict[str, int] = {}
    left = {tp: end - 1 for tp, end in targets.items()}  # the last offset to handle
    last = [time.monotonic()]

    def processed(topic: str, partition: int, offset: int) -> None:
        counts["records"] += 1
        last[0] = time.monotonic()
        if left.get((topic, partition), offset + 1) <= offset:
            del left[(topic, partition)]

    def write(collection: str, batch: list[View]) -> None:
        views(collection, batch)
        written[collection] = written.get(collection, 0) + len(batch)

    pipeline.started_ms = 0  # its group's event-time ticks, all of them, as they came
    rebuilding = getattr(pipeline.handler, "rebuilding", None)
    if rebuilding is not None:  # a handler that waits for peers live replays without waiting
        rebuilding()
    app = StreamApp(pipeline, settings, write, on_processed=processed, publish=False)

    def watch() -> None:
        while not app._stopping.wait(0.2):
            if not left or time.monotonic() - last[0] > idle_s:
                app.stop(timeout_s=0)
                return

    watcher = threading.Thread(target=watch, name="rebuild-watch", daemon=True)
    watcher.start()
    app.run()
    if app.error is not None:
        raise app.error
    return {
        "records": counts["records"],
        "partitions_short": len(left),  # stopped idle before their last offset
        **{f"views.{c}": n for c, n in sorted(written.items())},
    }


def _application() -> Any:
    """The engine's Application, its signal handlers set only from the main thread (run in a
    thread, the process's own handlers stop it through `StreamApp.stop`)."""
    from quixstreams import Application

    class App(Application):
        lost_hooks: list[Callable[[], None]]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.lost_hooks = []  # called once the group has taken the partitions away

        def _setup_signal_handlers(self) -> None:
            if threading.current_thread() is threading.main_thread():
                super()._setup_signal_handlers()  # type: ignore[no-untyped-call]

        def _on_lost(self, consumer: Any, topic_partitions: Any) -> None:
            super()._on_lost(consumer, topic_partitions)
            for hook in self.lost_hooks:
                hook()

    return App


# A step a batch of one collection's views goes through before it is written, on the
# writer's loop with the writer's database (the service's own client lives on another loop):
# for a rule that needs the store once per new key, not per record (warnings' staffing).
BeforeWrite = Callable[[Any, list[View]], Awaitable[list[View]]]


class MongoViews:
    """A `ViewWriter` on PyMongo's async client, on a loop of its own in a thread (the engine's
    loop is synchronous): each call is one ordered bulk write, waited for, its views first
    through the collection's `before_write` step if it has one. A step that fails fails the
    write: the checkpoint waits and retries it, as for a store that does not answer."""

    def __init__(
        self,
        client: Any,
        database: str,
        timeout_s: float = 30.0,
        before_write: Mapping[str, BeforeWrite] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.before_write = dict(before_write or {})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.client = client
        self.db = client[database]

    async def _write(self, collection: str, views: list[View]) -> None:
        step = self.before_write.get(collection)
        if step is not None:
            views = await step(self.db, views)
        coll = self.db[collection]
        known: dict[str, dict[str, Any]] = {}  # documents as this write has just left them
        for kind, run in _runs(_coalesced(views)):
            if kind == "insert":
                new = await _insert_new(coll, run)
                known.update({i: dict(d) for i, d in new.items()})
            elif kind == "fresh":
                await _insert_or_replace(coll, run)
                known.update({v.id: dict(v.doc or {}) for v in run})
            else:
                run = _needed(run, known)
                if run:
                    await coll.bulk_write([_op(v) for v in run], ordered=True)

    def __call__(self, collection: str, views: list[View]) -> None:
        future = asyncio.run_coroutine_threadsafe(self._write(collection, views), self.loop)
        future.result(timeout=self.timeout_s)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def _coalesced(views: list[View]) -> list[View]:
    """The views without those a later whole-document write of the same `_id` (a replace, a
    fresh document or a removal) makes moot: a document rewritten by every record of a
    checkpoint (a partition's monthly tally, say) is written once. Views of different `_id`s
    touch different documents, so dropping one of them reorders nothing that matters.

    A replace that makes a `fresh` view of its `_id` moot is written as `fresh` itself: the
    outcome is the same (the document as the replace has it), and the document was most
    likely new before the checkpoint (a profile, then its plan and contract), which an
    insert writes at a small part of an upsert's cost."""
    last: dict[str, int] = {}
    for i, v in enumerate(views):
        if v.doc is None or v.mode in ("replace", "fresh"):
            last[v.id] = i
    if len(last) == len(views):
        return views
    kept: list[View] = []
    fresh: set[str] = set()
    for i, v in enumerate(views):
        at = last.get(v.id, -1)
        if at > i:
            if v.mode == "fresh" and v.doc is not None:
                fresh.add(v.id)
            continue
        if at == i and v.mode == "replace" and v.doc is not None and v.id in fresh:
            v = dataclasses.replace(v, mode="fresh")
        kept.append(v)
    return kept


def _runs(views: list[View]) -> list[tuple[str, list[View]]]:
    """The views as writes: a run of `insert`s is one unordered insert of the new documents,
    a run of `fresh` ones an unordered insert and a replace of those already there, a run of
    the other modes one ordered bulk write.

    Only the views of one `_id` have an order to keep (views of different `_id`s touch
    different documents; no view collection has a unique index but `_id`'s). So a view's
    run is set by its rank among its `_id`'s views and its kind: the first writes of all the
    documents go before the second ones, each rank in at most three runs. Cut in the order
    they came, a checkpoint whose records each wrote an `insert` and a `fresh` document (a
    profile's name and number in the `lookup` view) was a write to the store per view."""
    ranks: list[dict[str, list[View]]] = []
    seen: dict[str, int] = {}
    for v in views:
        rank = seen.get(v.id, 0)
        seen[v.id] = rank + 1
        if rank == len(ranks):
            ranks.append({})
        kind = v.mode if v.mode in ("insert", "fresh") and v.doc is not None else "bulk"
        ranks[rank].setdefault(kind, []).append(v)
    return [(kind, run) for by_kind in ranks for kind, run in by_kind.items()]


def _needed(run: list[View], known: dict[str, dict[str, Any]]) -> list[View]:
    """A run of bulk writes without the `set`s that would change nothing: those of a document
    whose fields this write knows (`known`: documents it inserted or replaced whole, as they
    stand now) and that has these fields with these values already. A stream writes a field
    again as a `set` after the `insert` of its document so that a replay, whose `insert`
    finds the document there, still leaves the field as decided now (a warning's tier,
    hvc.warnings.pipeline); where the `insert` did write the document, that `set` is moot and
    costs the store nothing. `known` follows the views kept."""
    out = []
    for v in run:
        had = known.get(v.id)
        if v.doc is None:
            known.pop(v.id, None)
        elif v.mode == "set":
            if had is not None:
                if all(k in had and had[k] == x for k, x in v.doc.items() if k != "_id"):
                    continue
                had.update({k: x for k, x in v.doc.items() if k != "_id"})
        elif v.mode in ("replace", "fresh"):
            known[v.id] = {**v.doc, "_id": v.id}
        else:  # an insert written as an upsert: what the store has is not known here
            known.pop(v.id, None)
        out.append(v)
    return out


async def _insert_new(coll: Any, views: list[View]) -> dict[str, dict[str, Any]]:
    """`insert` views as one unordered insert: the documents whose `_id` is new are inserted,
    the others (already there: a replay, or the HTTP side moved it on) left as they are — what
    an upsert with `$setOnInsert` does one by one, at the cost of one insert. On FerretDB
    (SQLite) that is the difference between ~50,000 and ~3,000 documents/s (bench/README).
    The first view of an `_id` in the run stands, as it would in order. Returns the documents
    inserted, by `_id`."""
    docs: dict[str, dict[str, Any]] = {}
    for v in views:
        assert v.doc is not None
        docs.setdefault(v.id, {**v.doc, "_id": v.id})
    new = await insert_new(coll, list(docs.values()))
    return {i: docs[i] for i in new}


async def _insert_or_replace(coll: Any, views: list[View]) -> None:
    """`fresh` views: one unordered insert, then a replace of those whose `_id` was there
    (a duplicate key). The last view of an `_id` in the run stands, as it would in order. On
    FerretDB (SQLite) a new document inserted costs a small part of an upsert (bench/README)."""
    docs: dict[str, dict[str, Any]] = {}
    for v in views:
        assert v.doc is not None
        docs[v.id] = {**v.doc, "_id": v.id}
    new = await insert_new(coll, list(docs.values()))
    there = [d for i, d in docs.items() if i not in new]
    if there:
        await coll.bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in there], ordered=True
        )


def _op(v: View) -> DeleteOne | ReplaceOne[Any] | UpdateOne:
    """The bulk-write operation of a view."""
    if v.doc is None:
        return DeleteOne({"_id": v.id})
    if v.mode in ("replace", "fresh"):
        return ReplaceOne({"_id": v.id}, {**v.doc, "_id": v.id}, upsert=True)
    fields = {k: x for k, x in v.doc.items() if k != "_id"}  # an upsert takes the filter's
    if v.mode == "insert":
        return UpdateOne({"_id": v.id}, {"$setOnInsert": fields}, upsert=True)
    return UpdateOne({"_id": v.id}, {"$set": fields})
