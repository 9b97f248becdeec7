"""The warnings pipeline on hvc.common.streams without a broker: decisions carry the profile
and tier the customer's state holds, tasks wait for a manager, closes are per-customer timers
in event time, and it decides what the keyed processors' rules decide."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hvc.common import monthly, topics
from hvc.common.streams import Context, MemoryPartition, Pipeline, Record
from hvc.events.v1 import (
    accounts_pb2,
    calls_pb2,
    clock_pb2,
    common_pb2,
    complaints_pb2,
    customers_pb2,
    notifications_pb2,
    staff_pb2,
    tiering_pb2,
    usage_pb2,
    warnings_pb2,
)
from hvc.warnings import streams
from hvc.warnings.assignment import STAFFING_KEYS
from hvc.warnings.directory import caller_range, lookup_keys, name_range, number_range
from hvc.warnings.documents import TOPIC
from hvc.warnings.domain import signals
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.pipeline import COMPLAINTS, INPUTS, KEEP_COUNTED, WarningsHandler

RULES = load_rules(DEFAULT_RULES)
GRACE = 900
LATENESS = 2 * 86_400
CLOCK = "hvc.clock.v1"
CRM, USAGE, ACCOUNTS, CALLS, TIERS = (
    "crm.customers.v1",
    "billing.usage.v1",
    "billing.accounts.v1",
    "network.calls.v1",
    "hvc.tier-decisions.v1",
)


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)


def profile(when: str, manager: str | None = "M1", cid: str = "C1") -> customers_pb2.CustomerEvent:
    m = customers_pb2.CustomerEvent(event_id=f"p-{when}", customer_id=cid)
    m.customer_upserted.name = "张三"
    if manager:
        m.customer_upserted.manager_id = manager
    m.occurred_at.FromDatetime(at(when))
    return m


def tier(when: str, new: int = common_pb2.GOLD) -> tiering_pb2.TierDecided:
    m = tiering_pb2.TierDecided(
        event_id=f"t-{when}",
        customer_id="C1",
        old_tier=common_pb2.NONE,
        new_tier=new,
        source=tiering_pb2.TierDecided.ANNUAL,
    )
    m.occurred_at.FromDatetime(at(when))
    m.effective_from.FromDatetime(at(when))
    return m


def call(when: str, other: str = "10010") -> calls_pb2.CallRecorded:
    m = calls_pb2.CallRecorded(
        event_id=f"c-{when}",
        customer_id="C1",
        msisdn="13900000000",
        other_number=other,
        direction=calls_pb2.CallRecorded.OUTGOING,
        duration_s=95,
    )
    m.occurred_at.FromDatetime(at(when))
    return m


def usage(when: str, volume: int) -> usage_pb2.UsageRecorded:
    m = usage_pb2.UsageRecorded(
        event_id=f"u-{when}-{volume}",
        customer_id="C1",
        msisdn="13900000000",
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=usage_pb2.UsageRecorded.DOMESTIC,
        volume_bytes=volume,
    )
    m.occurred_at.FromDatetime(at(when))
    return m


def bill(when: str, period: str, due: dt.date) -> accounts_pb2.AccountEvent:
    m = accounts_pb2.AccountEvent(event_id=f"b-{when}", customer_id="C1")
    m.bill_issued.CopyFrom(
        accounts_pb2.BillIssued(
            bill_id=f"B{period}",
            period=period,
            amount_fen=10_000,
            countable_fen=10_000,
            due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
        )
    )
    m.occurred_at.FromDatetime(at(when))
    return m


class Run:
    def __init__(self, *, clock: bool = False) -> None:
        self.pipeline = Pipeline.of(
            "warnings", INPUTS, WarningsHandler(RULES, GRACE, LATENESS), clock=clock
        )
        self.part = MemoryPartition()
        self.out: list[tuple[str, Any, bytes | None]] = []
        self.views: list[Any] = []
        self.offset = 0

    def feed(self, *events: tuple[str, Any]) -> Run:
        for topic, message in events:
            self.offset += 1
            record = Record(topic, 0, self.offset, 0, b"C1")
            self.views += self.pipeline.step(
                self.part,
                record,
                message.SerializeToString(),
                lambda t, k, v, h: self.out.append((t, k, v)),
            )
        return self

    def warnings(self) -> list[tuple[str, str, str]]:
        got = []
        for t, _, v in self.out:
            if t in (topics.STAFF_NOTIFICATIONS, "hvc.notifications.v1"):
                continue
            assert t == TOPIC, t  # nothing dead-lettered
            w = warnings_pb2.WarningEvent.FromString(v).warning_raised
            name = warnings_pb2.WarningRaised.Code.Name(w.code)
            got.append((name, w.period, w.detected_at.ToDatetime(dt.UTC).isoformat()))
        return got

    def staff(self) -> list[tuple[str, str, str, str, str]]:
        """(key, event id, staff id, reason, code) of each StaffNotified."""
        got = []
        for t, k, v in self.out:
            if t == topics.STAFF_NOTIFICATIONS:
                n = staff_pb2.StaffNotificationEvent.FromString(v).staff_notified
                reason = staff_pb2.StaffNotified.Reason.Name(n.reason)
                got.append((str(k), n.notification_id, n.staff_id, reason, n.params["code"]))
        return got

    def view(self, collection: str) -> dict[str, dict[str, Any]]:
        """Each document as the store would hold it after the writes, one by one."""
        store: dict[str, dict[str, Any]] = {}
        for v in self.views:
            if v.collection == collection:
                v.apply(store)
        return store


def test_a_rival_call_is_decided_with_the_profile_and_tier_before_it():
    r = Run().feed((CRM, profile("2025-03-01T00:00:00")), (TIERS, tier("2025-03-01T01:00:00")))
    r.feed(
        (CALLS, call("2025-03-02T00:00:00")), (CALLS, call("2025-03-02T01:00:00", "13800000000"))
    )
    assert [w[0] for w in r.warnings()] == ["RIVAL_SERVICE_CALL"]
    [task] = r.view("tasks").values()
    [warning] = r.view("warnings").values()
    assert (task["manager_id"], task["status"], warning["tier"]) == ("M1", "OPEN", "GOLD")
    # A level-1 warning reaches the manager, once.
    wid = warning["warning_id"]
    assert r.staff() == [("M1", f"sn:{wid}", "M1", "WARNING_LEVEL_1", "RIVAL_SERVICE_CALL")]
    assert task["due_at"] - task["opened_at"] == dt.timedelta(hours=RULES.task_due_hours[1])


def test_a_warnings_tier_is_the_one_in_force_at_it_whichever_came_first():
    """Tiering publishes at its own pace: a decision in force at a warning may come after it.
    The warning, its task and its month's counts end with the tier in force at the warning,
    whatever the order the decisions and the records came in; a decision in force only after
    it changes none of them."""
    gold, diamond = tier("2025-03-01T01:00:00"), tier("2025-03-05T00:00:00", common_pb2.DIAMOND)
    calls = [
        (CALLS, call("2025-03-02T00:00:00")),
        (CALLS, call("2025-03-02T01:00:00", "13800000000")),
    ]
    first = Run().feed((CRM, profile("2025-03-01T00:00:00")), (TIERS, gold), *calls)
    first.feed((TIERS, diamond))
    late = Run().feed((CRM, profile("2025-03-01T00:00:00")), *calls)
    [(wid, task)] = late.view("tasks").items()
    assert task["tier"] == "NONE"  # none known yet
    late.feed((TIERS, diamond), (TIERS, gold))
    for run in (first, late):
        [warning] = run.view("warnings").values()
        [doc] = run.view("warnings_monthly").values()
        tiers = {k: n for k, n in monthly.counts_of(doc).items() if k.startswith("tier:")}
        assert (warning["tier"], run.view("tasks")[wid]["tier"], tiers) == (
            "GOLD",
            "GOLD",
            {"tier:GOLD": 1},
        )
    for collection in ("warnings", "tasks"):
        assert late.view(collection) == first.view(collection), collection
    counts = [
        {k: monthly.counts_of(d) for k, d in r.view("warnings_monthly").items()}
        for r in (first, late)
    ]
    assert counts[0] == counts[1]  # (the counts' JSON keeps the order they came in)
    # The later decision arriving again changes nothing more.
    late.views.clear()
    late.feed((TIERS, gold))
    assert [v.collection for v in late.views if v.collection != "lookup"] == []


def test_a_quarters_callback_is_planned_from_when_the_tier_took_effect_not_when_it_came():
    """A DIAMOND customer's callback is planned from the day it became due: the day its
    decision took effect, whether the decision came before the partition's time got there or
    after (tiering behind), and one effective later is planned when it takes effect."""
    from hvc.warnings.domain.callbacks import planned_on

    diamond = tier("2025-01-02T00:00:00", common_pb2.DIAMOND)
    early = Run().feed((CRM, profile("2025-01-01T00:00:00")), (TIERS, diamond))
    early.feed((CALLS, call("2025-01-20T00:00:00", "138")))
    late = Run().feed((CRM, profile("2025-01-01T00:00:00")))
    late.feed((CALLS, call("2025-01-20T00:00:00", "138")), (TIERS, diamond))
    want = planned_on("C1", dt.date(2025, 1, 1), dt.date(2025, 1, 2), RULES.callbacks)
    for run in (early, late):
        doc = run.view("callbacks")["CB-2025Q1-C1"]
        assert (doc["planned_on"], doc["tier"], doc["manager_id"]) == (
            want.isoformat(),
            "DIAMOND",
            "M1",
        )
    assert early.view("callbacks") == late.view("callbacks")
    # Effective later than the partition's time: nothing until that time comes.
    ahead = Run().feed((CRM, profile("2025-01-01T00:00:00")))
    ahead.feed((CALLS, call("2025-01-20T00:00:00", "138")))
    ahead.feed((TIERS, tier("2025-02-10T00:00:00", common_pb2.PLATINUM)))
    assert ahead.view("callbacks") == {}
    ahead.feed((CALLS, call("2025-02-11T00:00:00", "138")))
    doc = ahead.view("callbacks")["CB-2025Q1-C1"]
    assert (doc["planned_on"], doc["tier"]) == ("2025-02-10", "PLATINUM")


def test_a_task_opened_before_any_manager_gets_the_manager_of_the_profile_that_follows():
    r = Run().feed((CALLS, call("2025-03-02T00:00:00")))
    [(wid, task)] = r.view("tasks").items()
    assert task["manager_id"] is None
    assert r.staff() == []  # nobody to tell yet
    r.feed((CRM, profile("2025-03-03T00:00:00", manager="M7")))
    assert r.view("tasks")[wid]["manager_id"] == "M7"
    r.feed((CRM, profile("2025-03-04T00:00:00", manager="M8")))  # assigned once
    assert r.view("tasks")[wid]["manager_id"] == "M7"
    # The level-1 warning reaches the manager it was assigned to, once, at the warning's time.
    assert r.staff() == [("M7", f"sn:{wid}", "M7", "WARNING_LEVEL_1", "RIVAL_SERVICE_CALL")]
    [(_, _, value)] = [o for o in r.out if o[0] == topics.STAFF_NOTIFICATIONS]
    sent = staff_pb2.StaffNotificationEvent.FromString(value)
    assert sent.occurred_at.ToDatetime(dt.UTC) == at("2025-03-02T00:00:00")
    assert sent.staff_notified.params["category"] == "CARE"


def test_bills_are_closed_daily_in_event_time_as_the_keyed_rules_close_them():
    due = dt.date(2025, 3, 20)
    r = Run().feed((ACCOUNTS, bill("2025-03-01T02:00:00", "2025-02", due)))
    # Other records of the partition move its time past local midnights (+ the grace).
    r.feed((CALLS, call("2025-03-16T16:14:00", "138")))
    assert r.warnings() == []
    r.feed((CALLS, call("2025-03-16T16:16:00", "138")), (CALLS, call("2025-03-21T00:00:00", "138")))
    assert r.warnings() == [
        ("PAYMENT_DUE_SOON", "2025-02", "2025-03-16T16:00:00+00:00"),
        ("OVERDUE", "2025-02", "2025-03-20T16:00:00+00:00"),
    ]


def test_a_tier_decision_decided_at_wall_time_moves_no_close_ahead_of_the_feed():
    """Tiering stamps a decision with when it decided (wall time, long after a replayed or
    simulated feed's events): taken as the partition's time it fired every close up to that
    day at once, before the feed's own payments came (the fault suite's first engine run:
    less than half the warnings, decided differently in each run)."""
    due = dt.date(2025, 3, 20)
    decided_now = tier("2026-12-03T00:00:00")
    decided_now.effective_from.FromDatetime(at("2025-03-01T03:00:00"))
    r = Run().feed((ACCOUNTS, bill("2025-03-01T02:00:00", "2025-02", due)), (TIERS, decided_now))
    assert r.warnings() == []
    assert r.part.timers.now == at("2025-03-01T02:00:00").timestamp() * 1000
    r.feed((CALLS, call("2025-03-21T00:00:00", "138")))
    assert [w[0] for w in r.warnings()] == ["PAYMENT_DUE_SOON", "OVERDUE"]
    assert r.view("profiles")["C1"]["tier"] == "GOLD"


def tick(when: str) -> clock_pb2.ClockTicked:
    m = clock_pb2.ClockTicked(source="warnings@test")
    m.occurred_at.FromDatetime(at(when))
    return m


def test_with_the_wall_clock_a_quiet_partition_closes_on_time_and_a_late_tick_moves_nothing():
    due = dt.date(2025, 3, 20)
    r = Run(clock=True).feed((ACCOUNTS, bill("2025-03-01T02:00:00", "2025-02", due)))
    # No other record comes to the partition: the wall clock's ticks move its time.
    r.feed((CLOCK, tick("2025-03-16T16:14:00")))
    assert r.warnings() == []
    r.feed((CLOCK, tick("2025-03-16T16:16:00")))
    assert [w[0] for w in r.warnings()] == ["PAYMENT_DUE_SOON"]
    r.feed((CLOCK, tick("2025-03-21T00:00:00")), (CLOCK, tick("2025-03-20T00:00:00")))
    assert [w[0] for w in r.warnings()] == ["PAYMENT_DUE_SOON", "OVERDUE"]
    assert r.part.timers.now == at("2025-03-21T00:00:00").timestamp() * 1000  # never back


def test_it_decides_what_the_processors_decide_per_topic_and_a_redelivery_nothing_more():
    feed: list[tuple[str, Any]] = [(CRM, profile("2024-11-20T00:00:00"))]
    for month in ("2024-12", "2025-01", "2025-02"):
        feed.append((USAGE, usage(f"{month}-10T00:00:00", 1_000)))
    feed += [
        (USAGE, usage("2025-03-10T00:00:00", 100)),
        (ACCOUNTS, bill("2025-03-01T02:00:00", "2025-02", dt.date(2025, 3, 20))),
        (CALLS, call("2025-03-05T00:00:00")),
        (CALLS, call("2025-04-02T00:00:00", "138")),
    ]
    r = Run().feed(*feed)
    r.feed(*feed)  # all of it again: at least once
    pipeline = sorted(r.warnings())

    # the processors on the same records, a state per topic, their closes at each record's
    # time (as the keyed runtime ran them)
    processors = {p.topic: p for p in streams.processors(RULES, GRACE, LATENESS)}
    states: dict[str, dict[str, Any]] = {t: {} for t in INPUTS}
    raised: list[tuple[str, str, str]] = []
    last = 0
    for topic, message in feed:
        now = message.occurred_at.seconds
        for t, p in processors.items():
            closed = p.close({"C1": states[t]}, last, now)
            raised += [(x.signal.code.value, x.signal.period, x.at.isoformat()) for x in closed]
        last = max(last, now)
        applied = processors[topic].apply(message, states[topic])
        raised += [(x.signal.code.value, x.signal.period, x.at.isoformat()) for x in applied]
    assert pipeline == sorted(raised)
    assert {c for c, _, _ in pipeline} >= {"DATA_DROP", "RIVAL_SERVICE_CALL", "OVERDUE"}


def test_the_profiles_view_is_written_when_the_profile_or_tier_changed():
    r = Run().feed((CRM, profile("2025-01-01T00:00:00")), (TIERS, tier("2025-01-01T00:00:00")))
    written = [v for v in r.views if v.collection == "profiles"]
    assert [v.doc["tier"] for v in written] == ["NONE", "GOLD"]
    # A plan change (no profile field) and the same tier decided again: nothing to write.
    plan = customers_pb2.CustomerEvent(event_id="plan-1", customer_id="C1")
    plan.plan_changed.plan_id = "P1"
    plan.plan_changed.effective_from.FromDatetime(at("2025-01-03T00:00:00"))
    plan.occurred_at.FromDatetime(at("2025-01-03T00:00:00"))
    r.feed((CRM, plan), (TIERS, tier("2025-01-03T00:00:00")))
    assert len([v for v in r.views if v.collection == "profiles"]) == 2
    # Another manager: written, with the tier it has.
    r.feed((CRM, profile("2025-01-05T00:00:00", manager="M2")))
    last = [v for v in r.views if v.collection == "profiles"][-1]
    assert (last.doc["manager_id"], last.doc["tier"]) == ("M2", "GOLD")


def test_a_tier_in_force_later_is_shown_when_it_takes_effect():
    """An annual result is valid from 1 February and published before it: the profile and the
    VIP line's documents go by the tier in force, and change when the new one takes effect."""
    first = profile("2025-01-01T00:00:00")
    first.customer_upserted.msisdns.append("13812348000")
    r = Run().feed((CRM, first), (TIERS, tier("2025-01-01T00:00:00")))
    r.feed((TIERS, tier("2025-02-01T00:00:00", common_pb2.DIAMOND)))
    number = "n 00084321831 C1"
    assert (r.view("profiles")["C1"]["tier"], r.view("lookup")[number]["tier"]) == ("GOLD", "GOLD")
    r.feed((CALLS, call("2025-01-31T00:00:00", "138")))  # not yet
    assert r.view("profiles")["C1"]["tier"] == "GOLD"
    r.feed((CALLS, call("2025-02-01T00:10:00", "138")))
    assert (r.view("profiles")["C1"]["tier"], r.view("lookup")[number]["tier"]) == (
        "DIAMOND",
        "DIAMOND",
    )


def test_the_lookup_view_follows_the_profiles_numbers_and_name():
    first = profile("2025-01-01T00:00:00")
    first.customer_upserted.msisdns.extend(["13812348000", "13900001111"])
    r = Run().feed((CRM, first))
    lookups = [(v.id, v.doc, v.mode) for v in r.views if v.collection == "lookup"]
    assert sorted(i for i, _, _ in lookups) == [
        "m 张三 C1",
        "n 00084321831 C1",
        "n 11110000931 C1",
    ]
    # What the VIP line answers, in each number's document (the retention manager is the
    # view writer's staffing step's), inserted or replaced if already there; the name's
    # document is the customer alone, inserted once.
    caller = {
        "customer_id": "C1",
        "tier": "NONE",
        "crm_manager_id": "M1",
        "do_not_disturb": False,
        "open_complaints": [],
    }
    assert sorted((i, d, mode) for i, d, mode in lookups) == [
        ("m 张三 C1", {"customer_id": "C1"}, "insert"),
        ("n 00084321831 C1", caller, "fresh"),
        ("n 11110000931 C1", caller, "fresh"),
    ]
    # The second number given up, another taken, the name changed: the old keys removed.
    moved = profile("2025-02-01T00:00:00")
    moved.customer_upserted.name = "张三丰"
    moved.customer_upserted.msisdns.extend(["13812348000", "15000002222"])
    r.views.clear()
    r.feed((CRM, moved))
    changes = sorted((v.id, v.doc is not None) for v in r.views if v.collection == "lookup")
    assert changes == [
        ("m 张三 C1", False),
        ("m 张三丰 C1", True),
        ("n 11110000931 C1", False),
        ("n 22220000051 C1", True),
    ]
    # The same profile again: no lookup write.
    r.views.clear()
    again = profile("2025-03-01T00:00:00")
    again.customer_upserted.name = "张三丰"
    again.customer_upserted.msisdns.extend(["13812348000", "15000002222"])
    r.feed((CRM, again))
    assert [v for v in r.views if v.collection == "lookup"] == []


def test_the_lookup_documents_follow_the_tier_and_a_task_names_its_numbers_keys():
    first = profile("2025-01-01T00:00:00")
    first.customer_upserted.msisdns.append("13812348000")
    r = Run().feed((CRM, first))
    keys = ["m 张三 C1", "n 00084321831 C1"]
    assert sorted(r.view("lookup")) == keys
    # A new tier: the number's document carries it (the name's is not written again).
    r.views.clear()
    r.feed((TIERS, tier("2025-01-01T00:00:00")))
    lookups = sorted((v.id, v.doc["tier"], v.mode) for v in r.views if v.collection == "lookup")
    assert lookups == [("n 00084321831 C1", "GOLD", "replace")]
    # The same tier again, and a call that raises nothing: nothing written.
    r.views.clear()
    r.feed((TIERS, tier("2025-01-03T00:00:00")), (CALLS, call("2025-01-04T00:00:00", "138")))
    assert [v for v in r.views if v.collection == "lookup"] == []
    # A task goes to staffing naming the customer's number keys, where staffing writes the
    # manager it gives (the name's key is no caller's); the view writer writes the `lookup`
    # view after the tasks, so documents written with them carry that manager too.
    r.feed((CALLS, call("2025-01-05T00:00:00")))
    [task] = [v for v in r.views if v.collection == "tasks" and v.mode == "insert"]
    assert task.doc[STAFFING_KEYS] == ["n 00084321831 C1"]
    assert [v for v in r.views if v.collection == "lookup"] == []
    assert WarningsHandler.last_views == ("lookup",)
    # A task of a customer without a profile (no numbers) names none.
    other = Run().feed((CALLS, call("2025-01-05T00:00:00")))
    [task] = [v for v in other.views if v.collection == "tasks" and v.mode == "insert"]
    assert STAFFING_KEYS not in task.doc


def complaint(
    when: str, kid: str, status: str, sla: str = "ON_TRACK", cid: str = "C1"
) -> complaints_pb2.ComplaintUpdated:
    m = complaints_pb2.ComplaintUpdated(
        event_id=f"{kid} {when}",
        customer_id=cid,
        complaint_id=kid,
        status=complaints_pb2.ComplaintUpdated.Status.Value(status),
        sla_state=complaints_pb2.ComplaintUpdated.SlaState.Value(sla),
    )
    m.occurred_at.FromDatetime(at(when))
    return m


def test_the_lookup_documents_carry_the_open_complaints_as_their_changes_come():
    first = profile("2025-01-01T00:00:00")
    first.customer_upserted.msisdns.append("13812348000")
    r = Run().feed((CRM, first), (TIERS, tier("2024-12-31T00:00:00")))
    number = "n 00084321831 C1"
    assert r.view("lookup")[number]["open_complaints"] == []

    def written() -> list[tuple[str, list[dict[str, str]], str]]:
        got = [
            (v.id, v.doc["open_complaints"], v.mode) for v in r.views if v.collection == "lookup"
        ]
        r.views.clear()
        return got

    r.views.clear()
    r.feed((COMPLAINTS, complaint("2025-01-02T00:00:00", "K1", "RECEIVED")))
    k1 = {"id": "K1", "status": "RECEIVED", "sla_state": "ON_TRACK"}
    assert written() == [(number, [k1], "replace")]  # the number's only
    r.feed(
        (COMPLAINTS, complaint("2025-01-02T01:00:00", "K2", "REOPENED", "BREACHED")),
        (COMPLAINTS, complaint("2025-01-02T02:00:00", "K1", "DISPATCHED", "AT_RISK")),
    )
    k1 = {"id": "K1", "status": "DISPATCHED", "sla_state": "AT_RISK"}
    k2 = {"id": "K2", "status": "REOPENED", "sla_state": "BREACHED"}
    assert written()[-1] == (number, [k1, k2], "replace")  # by id
    # The same change delivered again: nothing written. A resolved complaint leaves.
    r.feed((COMPLAINTS, complaint("2025-01-02T02:00:00", "K1", "DISPATCHED", "AT_RISK")))
    assert written() == []
    r.feed((COMPLAINTS, complaint("2025-01-03T00:00:00", "K1", "RESOLVED")))
    assert written() == [(number, [k2], "replace")]
    # A new tier keeps them in the document it writes.
    r.feed((TIERS, tier("2025-01-01T00:00:00", common_pb2.DIAMOND)))
    assert written() == [(number, [k2], "replace")]
    # A complaint's change moves no clock: the partition's time is the feed's.
    assert r.part.timers.now == int(at("2025-01-01T00:00:00").timestamp() * 1000)
    # A closed complaint of a customer this partition has no state of creates none.
    r.feed((COMPLAINTS, complaint("2025-01-05T00:00:00", "K9", "CLOSED", cid="C9")))
    assert r.part.load("C9") is None
    assert not [t for t, _, _ in r.out if t.endswith(".dlq")]


def test_number_and_name_searches_are_id_ranges():
    low, high = number_range("8000")
    assert low == "n 0008" and high.startswith(low) and "n 00084321831 C1" < high
    assert number_range("13812348000")[0] == "n 00084321831"
    assert name_range(" 张 ")[0] == "m 张"
    for bad in ("800", "12ab5678", ""):
        with pytest.raises(ValueError):
            number_range(bad)
    with pytest.raises(ValueError):
        name_range("   ")
    assert caller_range("+8613812348000")[0] == "n 00084321831 "  # exactly this number
    assert caller_range("008613812348000")[0] == "n 00084321831 "
    assert lookup_keys("C9", {"msisdns": ["+86 138-1234-8000"], "name": ""}) == {
        "n 00084321831 C9"  # the national number, without the country code
    }


def test_warnings_are_counted_per_month_once():
    due = dt.date(2025, 3, 20)
    r = Run().feed(
        (TIERS, tier("2025-02-28T00:00:00")),
        (ACCOUNTS, bill("2025-03-01T02:00:00", "2025-02", due)),
        (CALLS, call("2025-03-21T00:00:00", "138")),
    )
    r.feed((CALLS, call("2025-03-21T00:00:00", "138")))  # a redelivery raises nothing
    # The same raise decided again (as a close may): not counted twice.
    ctx = Context(r.part, Record(CALLS, 0, 99, 0, None), 0)
    signal = signals.overdue("2025-02", due, None, at("2025-03-21T00:00:00"), RULES)
    assert signal is not None
    again = streams.Raise("C1", signal, at("2025-03-20T16:00:00"))
    WarningsHandler(RULES, GRACE, LATENESS)._publish(ctx, "C1", ctx.state("C1"), [again])
    assert [v for v in ctx.views if v.collection == "warnings_monthly"] == []
    assert [w[0] for w in r.warnings()] == ["PAYMENT_DUE_SOON", "OVERDUE"]
    # The customer (GOLD) is reminded of the bill due soon, once, in Chinese.
    [(key, value)] = [(k, v) for t, k, v in r.out if t == "hvc.notifications.v1"]
    reminder = notifications_pb2.NotificationRequested.FromString(value)
    assert (key, reminder.notification_id) == ("C1", "care|bill-due|C1|2025-02")
    assert reminder.params["amount"] == "100.00" and "3月20日" in reminder.params["text"]
    docs = {v.id: v.doc for v in r.views if v.collection == "warnings_monthly"}
    [(key, doc)] = docs.items()
    assert key == "2025-03 000" and doc["month"] == "2025-03"
    assert monthly.counts_of(doc) == {
        "total": 2,
        "code:PAYMENT_DUE_SOON": 1,
        "code:OVERDUE": 1,
        "level:2": 2,
        "tier:GOLD": 2,
        "category:CARE": 2,
    }


def test_the_warning_ids_counted_per_customer_are_bounded_and_keep_the_latest():
    """A customer's counted ids stay KEEP_COUNTED however many warnings come (they grew
    without bound), and the latest of them still keep a raise decided again from counting."""
    r = Run().feed((TIERS, tier("2025-02-28T00:00:00")))
    handler = WarningsHandler(RULES, GRACE, LATENESS)
    ctx = Context(r.part, Record(CALLS, 0, 99, 0, None), 0)
    raises = []
    for n in range(KEEP_COUNTED + 40):  # as many months' overdue bills, one after another
        period = f"{2000 + n // 12}-{n % 12 + 1:02d}"
        due = dt.date(2000 + n // 12, n % 12 + 1, 20)
        when = dt.datetime(due.year, due.month, 21, tzinfo=dt.UTC)
        signal = signals.overdue(period, due, None, when, RULES)
        assert signal is not None
        raises.append(streams.Raise("C1", signal, when))
    handler._publish(ctx, "C1", ctx.state("C1"), raises)
    counted = ctx.state("C1")["wc"]
    assert len(counted) == KEEP_COUNTED < len(raises)
    monthly_writes = len([v for v in ctx.views if v.collection == "warnings_monthly"])
    assert monthly_writes == len(raises)
    handler._publish(ctx, "C1", ctx.state("C1"), raises[-KEEP_COUNTED:])  # decided again
    again = len([v for v in ctx.views if v.collection == "warnings_monthly"]) - monthly_writes
    assert again == 0 and ctx.state("C1")["wc"] == counted


def test_a_tasks_close_is_counted_in_its_month_once():
    def closed(task: str, outcome: int, when: str, code: int | None) -> warnings_pb2.WarningEvent:
        m = warnings_pb2.WarningEvent(event_id=f"closed-{task}", customer_id="C1")
        m.occurred_at.FromDatetime(at(when))
        c = m.task_closed
        c.task_id, c.warning_id, c.outcome = task, task, outcome
        c.manager_id, c.tier = "M1", "GOLD"
        if code is None:  # a close from before codes were carried: counted, not dead-lettered
            return m
        c.code = code
        if code == warnings_pb2.WarningRaised.OVERDUE:  # t2: a task from before categories
            c.category = warnings_pb2.WarningRaised.CARE
        return m

    overdue, expiry = warnings_pb2.WarningRaised.OVERDUE, warnings_pb2.WarningRaised.CONTRACT_EXPIRY
    r = Run().feed(
        (TOPIC, closed("t1", warnings_pb2.TaskClosed.RETAINED, "2025-03-31T16:30:00", overdue)),
        (TOPIC, closed("t1", warnings_pb2.TaskClosed.RETAINED, "2025-03-31T16:30:00", overdue)),
        (TOPIC, closed("t2", warnings_pb2.TaskClosed.CHURNED, "2025-04-02T00:00:00", expiry)),
        (TOPIC, closed("t3", warnings_pb2.TaskClosed.CHURNED, "2025-05-02T00:00:00", None)),
    )
    docs = {v.id: monthly.counts_of(v.doc) for v in r.views if v.collection == "retention_monthly"}
    assert docs == {
        "2025-04 000": {  # 16:30 UTC on 31 March is April in Shanghai
            "category|outcome:CARE|RETAINED": 1,
            "category|outcome:SERVICE_MARKETING|CHURNED": 1,  # by the rule set's category
            "outcome:RETAINED": 1,
            "manager|outcome:M1|RETAINED": 1,
            "tier|outcome:GOLD|RETAINED": 1,
            "outcome:CHURNED": 1,
            "manager|outcome:M1|CHURNED": 1,
            "tier|outcome:GOLD|CHURNED": 1,
        },
        "2025-05 000": {
            "category|outcome:UNKNOWN|CHURNED": 1,
            "outcome:CHURNED": 1,
            "manager|outcome:M1|CHURNED": 1,
            "tier|outcome:GOLD|CHURNED": 1,
        },
    }
    assert r.warnings() == []  # nothing decided from its own output, nothing dead-lettered


def filed(gid: str, cls: str, manager: str, n: int) -> tiering_pb2.GroupFiled:
    m = tiering_pb2.GroupFiled(
        event_id=f"gf-{gid}-{n}", customer_id=gid, name="江城供电局", group_class=cls
    )
    m.manager_id = manager
    m.occurred_at.FromDatetime(at("2025-01-01T00:00:00"))
    return m


def test_the_highest_value_groups_are_visited_each_quarter_by_their_manager():
    """A class-A group's file (tiering's, on hvc.group-files.v1) plans the quarter's visit on
    its manager's list, and the next quarter's when it starts; a file naming another manager
    hands the open visit over; a class-C group is not visited. A file that comes before the
    partition has a time is planned once it has one."""
    files = "hvc.group-files.v1"
    r = Run().feed((files, filed("G1", "A", "M1", 1)), (files, filed("G2", "C", "M1", 1)))
    assert r.view("callbacks") == {}  # no time yet
    r.feed((CALLS, call("2025-04-02T00:00:00", "138")))
    visits = r.view("callbacks")
    assert list(visits) == ["VI-2025Q2-G1"]
    v = visits["VI-2025Q2-G1"]
    assert (v["kind"], v["manager_id"], v["customer_id"], v["reason"]) == (
        "VISIT",
        "M1",
        "G1",
        "GROUP_CLASS_A",
    )
    assert v["due_at"] == at("2025-06-30T16:00:00")  # the next quarter's start, Shanghai
    r.feed((files, filed("G1", "A", "M2", 2)))
    assert r.view("callbacks")["VI-2025Q2-G1"]["manager_id"] == "M2"
    r.feed((files, filed("G1", "A", "M2", 2)))  # redelivered: nothing new
    r.feed((CALLS, call("2025-07-02T00:00:00", "138")))
    assert sorted(r.view("callbacks")) == ["VI-2025Q2-G1", "VI-2025Q3-G1"]
    assert r.view("callbacks")["VI-2025Q3-G1"]["manager_id"] == "M2"
    assert all(t != "hvc.group-files.v1.dlq" for t, _, _ in r.out)
