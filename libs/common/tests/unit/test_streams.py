"""hvc.common.streams without an engine: the timer layer and the pipeline's decoding, dead
letters, atomic handling and time, through the in-memory partition store."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from hvc.common import tracing
from hvc.common.codec import InvalidEvent
from hvc.common.streams import (
    Context,
    DictKV,
    EngineSettings,
    MemoryPartition,
    Pipeline,
    Record,
    Timers,
    read_ahead,
)
from hvc.events.v1 import notifications_pb2, usage_pb2

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC: the codec refuses instants outside 2000-2100


def test_timers_fire_once_in_due_order_at_most_a_minute_late():
    timers = Timers(DictKV())
    timers.schedule(
        [(10 * MIN + 5, "b", "x", 1), (10 * MIN + 1, "a", "x", 2), (30 * MIN, "c", "y", 3)]
    )
    assert timers.advance(10 * MIN + 59_998) == []  # its minute is not over
    assert timers.advance(11 * MIN) == [(10 * MIN + 1, "a", "x", 2), (10 * MIN + 5, "b", "x", 1)]
    assert timers.advance(5 * MIN) == []  # time never goes back
    assert timers.now == 11 * MIN
    assert timers.advance(40 * MIN) == [(30 * MIN, "c", "y", 3)]
    assert timers.advance(50 * MIN) == []


def test_timers_of_a_one_ms_step_fire_once_time_reaches_them():
    timers = Timers(DictKV(), step_ms=1)
    timers.schedule([(1_000, "a", "x", 1), (1_000, "b", "x", 2), (1_500, "c", "y", 3)])
    assert timers.advance(999) == []
    assert timers.advance(1_000) == [(1_000, "a", "x", 1), (1_000, "b", "x", 2)]
    assert timers.advance(1_499) == []
    assert timers.advance(1_500) == [(1_500, "c", "y", 3)]


def test_timers_survive_their_reload_from_the_same_state():
    kv = DictKV()
    Timers(kv).schedule([(5 * MIN, "a", "x", None)])
    Timers(kv).schedule([(5 * MIN + 1, "b", "x", None), (2 * MIN, "c", "z", None)])
    fired = Timers(kv).advance(9 * MIN)
    assert [k for _, k, _, _ in fired] == ["c", "a", "b"]
    assert set(kv) == {"now", "buckets"} and kv.get("buckets") == []


class Counting:
    def __init__(self) -> None:
        self.fired: list[tuple[str, str, Any, int]] = []

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        if not message.HasField("occurred_at"):
            raise InvalidEvent("occurred_at is required")
        return int(message.occurred_at.ToMilliseconds())

    def handle(self, ctx: Context, topic: str, m: Any) -> None:
        st = ctx.state(m.customer_id)
        st["fen"] = st.get("fen", 0) + m.charged_fen
        if m.charged_fen == 13:
            raise InvalidEvent("13 is refused")
        if m.charged_fen == 66:
            raise ZeroDivisionError("a bug in a rule")
        if "due" not in st:
            st["due"] = ctx.now_ms + 10 * MIN
            ctx.schedule(st["due"], m.customer_id, "remind", m.event_id)
        ctx.view("spend", m.customer_id, {"fen": st["fen"]})

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        self.fired.append((key, what, arg, ctx.now_ms))
        ctx.emit("out", key, notifications_pb2.NotificationRequested(notification_id=arg))


def _usage(cid: str, n: int, fen: int, at_ms: int | None) -> bytes:
    u = usage_pb2.UsageRecorded(
        event_id=f"u{n}",
        customer_id=cid,
        msisdn="13900000000",
        charged_fen=fen,
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=usage_pb2.UsageRecorded.DOMESTIC,
    )
    if at_ms is not None:
        u.occurred_at.FromMilliseconds(T0 + at_ms)
    return u.SerializeToString()


@pytest.fixture
def run():
    handler = Counting()
    pipeline = Pipeline("svc", {"usage": usage_pb2.UsageRecorded}, handler)
    part = MemoryPartition()
    produced: list[tuple[str, Any, bytes | None, dict[str, bytes]]] = []
    views: list[Any] = []
    offset = iter(range(1000))

    def feed(value: bytes) -> None:
        record = Record("usage", 3, next(offset), 1_000, b"C1", (("trace", b"t1"),))
        views.extend(
            pipeline.step(
                part, record, value, lambda t, k, v, h: produced.append((t, k, v, dict(h)))
            )
        )

    return feed, part, produced, views, handler


def test_a_record_folds_into_state_and_its_view(run):
    feed, part, produced, views, _ = run
    feed(_usage("C1", 1, 100, MIN))
    feed(_usage("C1", 2, 50, 2 * MIN))
    assert part.load("C1") == {"fen": 150, "due": T0 + 11 * MIN}
    assert [(v.collection, v.id, v.doc) for v in views] == [
        ("spend", "C1", {"fen": 100}),
        ("spend", "C1", {"fen": 150}),
    ]
    assert produced == []


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        (b"\xff\xfe not protobuf", b"invalid", b"undecodable"),
        (_usage("C1", 3, 10, None), b"invalid", b"occurred_at is required"),
        (_usage("C1", 4, 13, MIN), b"invalid", b"13 is refused"),
        (_usage("C1", 5, 66, MIN), b"handler", b"zerodivisionerror: a bug in a rule"),
    ],
)
def test_bad_records_are_dead_lettered_and_change_nothing(run, value, error, reason):
    feed, part, produced, views, _ = run
    feed(_usage("C1", 1, 100, MIN))
    feed(value)
    assert part.load("C1") == {"fen": 100, "due": T0 + 11 * MIN}  # the refused fold left no trace
    assert len(views) == 1
    [(topic, key, dead, headers)] = produced
    assert (topic, key, dead) == ("usage.dlq", b"C1", value)
    assert headers["dlq.error"] == error and reason in headers["dlq.reason"].lower()
    assert headers["dlq.source.offset"] == b"1" and headers["trace"] == b"t1"


def test_timers_fire_before_the_record_that_passes_them_with_its_cause(run):
    feed, _, produced, _, handler = run
    feed(_usage("C1", 1, 100, MIN))
    feed(_usage("C1", 2, 1, 11 * MIN + 30_000))  # within the due minute: not yet
    assert handler.fired == []
    feed(_usage("C1", 3, 1, 12 * MIN))
    assert handler.fired == [("C1", "remind", "u1", T0 + 11 * MIN)]
    [(topic, key, value, headers)] = produced
    assert (topic, key) == ("out", "C1")
    assert notifications_pb2.NotificationRequested.FromString(value).notification_id == "u1"
    # Caused by the record that moved event time past it; made due by the timer.
    due = b"remind/%d" % (T0 + 11 * MIN)
    assert headers == {"hvc-cause": b"usage/3/2", "hvc-cause-ts": b"1000", "hvc-due": due}
    assert tracing.parse_due(headers.items()) == ("remind", T0 + 11 * MIN)
    feed(_usage("C1", 4, 1, 60 * MIN))
    assert len(handler.fired) == 1  # once


class Daily(Counting):
    """Fires every minute of event time once started: a chain of timers set by fires."""

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        self.fired.append((key, what, arg, ctx.now_ms))
        ctx.schedule(ctx.now_ms + MIN, key, what, arg)


def test_timers_a_fire_sets_that_are_already_due_fire_before_the_record_in_order():
    handler = Daily()
    pipeline = Pipeline("svc", {"usage": usage_pb2.UsageRecorded}, handler)
    part = MemoryPartition()
    record = Record("usage", 0, 0, 0, b"C1")
    pipeline.step(part, record, _usage("C1", 1, 100, MIN), lambda *a: None)  # due at 11 min
    pipeline.step(part, record, _usage("C1", 2, 100, 16 * MIN), lambda *a: None)
    assert [(now - T0) // MIN for *_, now in handler.fired] == [11, 12, 13, 14, 15]


class Late(Counting):
    """Sets a timer already due by the partition's time (what it learns comes late)."""

    def handle(self, ctx: Context, topic: str, m: Any) -> None:
        if m.charged_fen == 7:
            ctx.schedule(ctx.now_ms - 30 * MIN, m.customer_id, "late", m.event_id)


def test_a_timer_a_record_sets_already_due_fires_with_that_record():
    """Not with the partition's next record, which may never come (the feed's last)."""
    handler = Late()
    pipeline = Pipeline("svc", {"usage": usage_pb2.UsageRecorded}, handler)
    part = MemoryPartition()
    record = Record("usage", 0, 0, 0, b"C1")
    pipeline.step(part, record, _usage("C1", 1, 100, 60 * MIN), lambda *a: None)
    pipeline.step(part, record, _usage("C1", 2, 7, 60 * MIN), lambda *a: None)
    assert handler.fired == [("C1", "late", "u2", T0 + 30 * MIN)]


def _through(sink: Any, views: list[Any], partitions: int = 1) -> None:
    """The views as the engine hands them to a sink, record by record (from `partitions`
    input partitions in turn), then the checkpoint's flush."""
    for n, v in enumerate(views):
        sink.add(v, v.id, 0, [], f"in.{n % partitions}", n % partitions, n)
    sink.flush()


def test_the_view_sink_writes_a_batch_as_if_one_by_one_and_each_mode_as_its_operation():
    from pymongo import DeleteOne, ReplaceOne, UpdateOne

    from hvc.common.streams import View, _op, _view_sink

    written: list[tuple[str, list[View]]] = []
    sink = _view_sink("t", lambda c, vs: written.append((c, vs)), 1.0)
    batch = [
        View("tasks", "a", {"status": "OPEN", "manager_id": None}, "insert"),
        View("tasks", "a", {"manager_id": "M1"}, "set"),  # kept after the insert, in order
        View("profiles", "p", {"tier": "GOLD"}),
        View("profiles", "p", {"tier": "DIAMOND"}),  # a whole document: the last one wins
        View("tasks", "b", {"status": "OPEN"}, "insert"),
        View("tasks", "b", None),  # a removal supersedes what came before
        View("profiles", "q", {"tier": "GOLD"}, "fresh"),  # new in this checkpoint:
        View("profiles", "q", {"tier": "SILVER"}),  # its last whole document inserted too
    ]
    _through(sink, batch)
    got = {c: [(v.id, v.mode, v.doc) for v in vs] for c, vs in written}
    assert got == {
        "tasks": [
            ("a", "insert", {"status": "OPEN", "manager_id": None}),
            ("a", "set", {"manager_id": "M1"}),
            ("b", "replace", None),
        ],
        "profiles": [("p", "replace", {"tier": "DIAMOND"}), ("q", "fresh", {"tier": "SILVER"})],
    }
    ins = _op(batch[0])
    assert ins == UpdateOne(
        {"_id": "a"}, {"$setOnInsert": {"status": "OPEN", "manager_id": None}}, upsert=True
    )
    assert _op(batch[1]) == UpdateOne({"_id": "a"}, {"$set": {"manager_id": "M1"}})
    assert _op(batch[3]) == ReplaceOne({"_id": "p"}, {"tier": "DIAMOND", "_id": "p"}, upsert=True)
    assert _op(batch[5]) == DeleteOne({"_id": "b"})


def test_the_view_sink_writes_a_key_s_views_in_the_order_of_its_records_across_inputs():
    """Records from two input partitions in turn: C0's usage (partition 0), C1's profile
    (1), C1's usage after it (0). The store ends with each key's last view, whichever
    partition opened the checkpoint, and one write per collection covers the checkpoint."""
    from hvc.common.streams import View, _view_sink

    store: dict[str, Any] = {}
    writes: list[str] = []

    def write(collection: str, views: list[View]) -> None:
        writes.append(collection)
        store.update({v.id: v.doc for v in views})

    sink = _view_sink("t", write, 1.0)
    views = [
        View("spend", "C0", {"fen": 5, "m": "M0"}),  # usage, partition 0
        View("spend", "C1", {"fen": 0, "m": "M1"}),  # profile, partition 1
        View("spend", "C1", {"fen": 120, "m": "M1"}),  # usage, partition 0
        View("spend", "C2", {"fen": 0, "m": "M2"}),  # profile, partition 1
    ]
    _through(sink, views, partitions=2)
    assert store == {"C0": views[0].doc, "C1": views[2].doc, "C2": views[3].doc}
    assert writes == ["spend"]
    sink.flush()  # a checkpoint without views writes nothing
    assert writes == ["spend"]


def test_a_store_that_does_not_answer_holds_the_checkpoint_then_fails_the_run():
    from hvc.common.streams import View, ViewStoreDown, _view_sink

    answers = [ConnectionError("down"), ConnectionError("down"), None]
    written: list[str] = []
    slept: list[float] = []

    def write(collection: str, views: list[View]) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        written.append(collection)

    sink = _view_sink("t", write, 60.0, slept.append)
    _through(sink, [View("tasks", "a", {"x": 1})])
    assert written == ["tasks"] and len(slept) == 2  # held, retried, written once
    never = _view_sink("t", lambda c, vs: (_ for _ in ()).throw(ConnectionError("down")), 0.0)
    with pytest.raises(ViewStoreDown):
        _through(never, [View("tasks", "a", {"x": 1})])


def test_a_rebalance_s_flush_holds_the_views_no_longer_than_its_revoke_hold():
    """The engine flushes a sink on a rebalance in a thread it abandons past its budget: the
    views are given up within the revoke hold there (a later write could land after the new
    owner's), while the engine's own thread would go on holding the checkpoint."""
    import threading

    from hvc.common.streams import View, ViewStoreDown, _view_sink

    attempts: list[str] = []

    def down(collection: str, views: list[View]) -> None:
        attempts.append(threading.current_thread().name)
        raise ConnectionError("down")

    sink = _view_sink("t", down, 60.0, lambda s: time.sleep(min(s, 0.05)), revoke_hold_s=0.3)
    sink.add(View("tasks", "a", {"x": 1}), "a", 0, [], "in", 0, 0)  # on the engine's thread
    failed: list[BaseException] = []

    def revoke() -> None:
        try:
            sink.flush()
        except BaseException as exc:
            failed.append(exc)

    started = time.monotonic()
    flusher = threading.Thread(target=revoke, name="revoke", daemon=True)
    flusher.start()
    flusher.join(10)
    assert not flusher.is_alive() and time.monotonic() - started < 5
    assert [type(e) for e in failed] == [ViewStoreDown] and "within 0 s" in str(failed[0])
    assert len(attempts) >= 2 and set(attempts) == {"revoke"}  # retried, then given up


def test_partitions_lost_mid_checkpoint_write_none_of_its_views_and_fail_the_run(tmp_path):
    """The group took the partitions away (the engine's lost callback): the checkpoint's
    views are not written (another member replays its records), the flush fails the run,
    and the next checkpoint writes again."""
    from hvc.common.streams import PartitionsLost, View, _application, _view_sink

    written: list[tuple[str, list[View]]] = []
    sink = _view_sink("t", lambda c, vs: written.append((c, vs)), 1.0)
    app = _application()(broker_address="127.0.0.1:1", consumer_group="g", state_dir=tmp_path)
    app.lost_hooks.append(sink.give_up)
    sink.add(View("spend", "C1", {"fen": 1}), "C1", 0, [], "in", 0, 0)
    app._on_lost(None, [])  # as the consumer calls it
    with pytest.raises(PartitionsLost):
        sink.flush()
    assert written == []
    _through(sink, [View("spend", "C1", {"fen": 2})])  # the run started again: written
    assert written == [("spend", [View("spend", "C1", {"fen": 2})])]


def test_the_view_sink_counts_the_time_its_writes_take_per_collection():
    from hvc.common.streams import VIEW_SECONDS, View, _view_sink

    def seconds(collection: str) -> float:
        return VIEW_SECONDS.labels("timed", collection)._value.get()

    before = seconds("slow"), seconds("fast")
    sink = _view_sink("timed", lambda c, vs: time.sleep(0.05 if c == "slow" else 0.0), 1.0)
    _through(sink, [View("slow", "a", {"x": 1}), View("fast", "b", {"x": 1})])
    slow, fast = seconds("slow") - before[0], seconds("fast") - before[1]
    assert 0.05 <= slow < 1.0, slow
    assert 0.0 <= fast < 0.05, fast


def test_a_run_that_fails_starts_again_on_a_new_engine_until_stopped():
    from hvc.common.streams import EngineSettings, StreamApp

    class FakeEngine:
        def __init__(self, outcome: BaseException | None) -> None:
            self.outcome = outcome

        def run(self) -> None:
            if self.outcome is not None:
                raise self.outcome

        def stop(self) -> None:
            return None

    outcomes: list[BaseException | None] = [RuntimeError("Commit failed: Unknown member"), None]
    built: list[FakeEngine] = []

    class Supervised(StreamApp):
        def _build(self) -> None:
            built.append(FakeEngine(outcomes.pop(0)))
            self.app = built[-1]

    settings = EngineSettings("k", "g", "/tmp/x", restart_min_s=0.0)
    app = Supervised(Pipeline("t", {}, Counting()), settings)
    app.run()  # the first engine fails, the second runs until it is stopped
    assert (app.runs, len(built), app.error) == (2, 2, None)


def test_the_read_ahead_is_a_budget_shared_by_the_input_partitions() -> None:
    def per_partition(inputs: int, records: int = 40_000, per: int | None = None) -> int:
        settings = EngineSettings("b", "g", "/tmp", buffer_records=records)
        return read_ahead(dataclasses.replace(settings, buffer_per_partition=per), inputs)

    assert per_partition(12) == 40_000 // (12 * 12) == 277  # warnings' twelve topics
    assert per_partition(3) == 300  # tiering's three: at most 300 each
    assert per_partition(12, records=1_000) == 100  # at least 100 each
    assert per_partition(12, per=500) == 500  # set: as set


def _as_runs(
    store: dict[str, dict[str, Any]],
    kind: str,
    run: list[Any],
    known: dict[str, dict[str, Any]] | None = None,
) -> int:
    """What a run does (`MongoViews._write`): inserts, the first of an `_id` standing; fresh
    documents, the last standing; the others in order, without the `set`s that change nothing
    on a document the write knows (`known`, kept as the writer keeps it). Returns the views
    sent to the store."""
    from hvc.common.streams import _needed

    known = {} if known is None else known
    if kind == "insert":
        first: dict[str, Any] = {}
        for v in run:
            first.setdefault(v.id, v)
        for i, v in first.items():
            if i not in store:
                store[i] = dict(v.doc)
                known[i] = {**v.doc, "_id": i}
        return len(first)
    if kind == "fresh":
        for v in run:
            store[v.id] = dict(v.doc)
            known[v.id] = dict(v.doc)
        return len(run)
    sent = _needed(run, known)
    for v in sent:
        v.apply(store)
    return len(sent)


def test_a_checkpoints_views_are_a_few_writes_with_the_outcome_of_one_by_one() -> None:
    import random

    from hvc.common.streams import View, _coalesced, _runs

    # A checkpoint of profiles: each writes its name's document (insert) and its number's
    # (fresh), as the warnings' `lookup` view does; cut in arrival order that was a write
    # per view.
    profiles = [
        View("lookup", key, {"customer_id": f"C{i}"}, mode)
        for i in range(100)
        for key, mode in ((f"name:{i}", "insert"), (f"1380000{i:04d}", "fresh"))
    ]
    runs = _runs(_coalesced(profiles))
    assert [(kind, len(run)) for kind, run in runs] == [("insert", 100), ("fresh", 100)]
    # A document new in the checkpoint and rewritten in it (a profile, then its plan) is
    # inserted as it was last written, not upserted.
    rewritten = [View("c", "x", {"n": 1}, "fresh"), View("c", "x", {"n": 2}, "replace")]
    assert [(k, [(v.id, v.doc) for v in r]) for k, r in _runs(_coalesced(rewritten))] == [
        ("fresh", [("x", {"n": 2})])
    ]

    # An `_id`'s views keep their order: its second write comes after its first, whatever
    # runs the others' writes make.
    views = [
        View("t", "x", {"a": 1}, "fresh"),
        View("t", "y", {"b": 1}, "insert"),
        View("t", "x", {"a": 2}, "set"),
        View("t", "z", {"c": 1}, "set"),
        View("t", "x", {"d": 3}, "set"),
    ]
    assert [(kind, [(v.id, v.doc) for v in run]) for kind, run in _runs(views)] == [
        ("fresh", [("x", {"a": 1})]),
        ("insert", [("y", {"b": 1})]),
        ("bulk", [("z", {"c": 1})]),
        ("bulk", [("x", {"a": 2})]),
        ("bulk", [("x", {"d": 3})]),
    ]

    # Any mix of modes over a few documents: written as runs, the store ends as written one
    # by one.
    rng = random.Random(19)
    modes = ("insert", "fresh", "replace", "set", "delete")
    for _ in range(2_000):
        start = {k: {"v": -1} for k in "abcd" if rng.random() < 0.5}
        batch = []
        for n in range(rng.randint(1, 12)):
            mode = rng.choice(modes)
            doc = None if mode == "delete" else {"v": n, f"f{n % 3}": n}
            batch.append(View("t", rng.choice("abcde"), doc, "replace" if doc is None else mode))
        expected = {k: dict(d) for k, d in start.items()}
        for v in batch:
            v.apply(expected)
        got = {k: dict(d) for k, d in start.items()}
        known: dict[str, dict[str, Any]] = {}
        for kind, run in _runs(_coalesced(batch)):
            _as_runs(got, kind, run, known)
        assert got == expected, batch


def test_a_set_after_the_insert_of_its_document_is_written_only_if_the_insert_was_not() -> None:
    """A warning's tier is written with it (`insert`) and again as a `set`, so that a replay,
    whose insert finds the document there, leaves the tier it decides now. Where the insert
    wrote the document, the set changes nothing and is not sent; where it did not, it is."""
    from hvc.common.streams import View, _coalesced, _runs

    batch = [
        View("w", "new", {"code": "OVERDUE", "tier": "GOLD"}, "insert"),
        View("w", "old", {"code": "OVERDUE", "tier": "GOLD"}, "insert"),
        View("w", "new", {"tier": "GOLD"}, "set"),
        View("w", "old", {"tier": "GOLD"}, "set"),
    ]
    store = {"old": {"code": "OVERDUE", "tier": "NONE"}}
    known: dict[str, dict[str, Any]] = {}
    sent = sum(_as_runs(store, kind, run, known) for kind, run in _runs(_coalesced(batch)))
    assert store == {
        "new": {"code": "OVERDUE", "tier": "GOLD"},
        "old": {"code": "OVERDUE", "tier": "GOLD"},
    }
    assert sent == 3  # the two inserts' documents, and the set of the one that was there
    # A set that does change the document it inserted is sent, and the one after it that
    # changes it back too.
    store, known = {}, {}
    flip = [
        View("w", "x", {"tier": "GOLD"}, "insert"),
        View("w", "x", {"tier": "SILVER"}, "set"),
        View("w", "x", {"tier": "GOLD"}, "set"),
    ]
    sent = sum(_as_runs(store, kind, run, known) for kind, run in _runs(_coalesced(flip)))
    assert (store, sent) == ({"x": {"tier": "GOLD"}}, 3)
