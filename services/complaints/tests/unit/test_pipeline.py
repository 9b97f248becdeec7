"""The complaints pipeline over one partition in memory (hvc.common.streams.MemoryPartition):
filings, tier decisions, the HTTP side's commands and the SLA milestones, as the engine would
run them, without a broker or a store."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hvc.common import monthly, topics, tracing
from hvc.common.streams import EVENT_TICKS, MemoryPartition, Pipeline, Record
from hvc.complaints.domain.policy import DEFAULT_POLICIES, load_policies
from hvc.complaints.domain.roster import DEFAULT_ROSTER, Roster, escalation_level, load_roster
from hvc.complaints.pipeline import COMMANDS, FILINGS, INPUTS, OUTCOMES, TIERS, ComplaintsHandler
from hvc.events.v1 import care_pb2, clock_pb2, common_pb2, complaints_pb2, staff_pb2, tiering_pb2

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 6, 2, 0, tzinfo=UTC)
POLICIES = load_policies(DEFAULT_POLICIES)
Status = complaints_pb2.ComplaintUpdated.Status
Sla = complaints_pb2.ComplaintUpdated.SlaState
MIN = dt.timedelta(minutes=1)


class Gate:
    """A frontier the test opens by hand."""

    def __init__(self, open_: bool = True) -> None:
        self.open = open_
        self.decisions: list[int] = []

    def released(self, partition: int, published_ms: int) -> bool:
        return self.open

    def decided(self, partition: int, offset: int) -> None:
        self.decisions.append(offset)


class Run:
    def __init__(self, gate: Gate | None = None, roster: Roster | None = None) -> None:
        self.gate = gate or Gate()
        handler = ComplaintsHandler(POLICIES, self.gate, roster=roster)
        self.pipeline = Pipeline.of("complaints", INPUTS, handler, clock=True, event_ticks=True)
        self.pipeline.started_ms = 0  # the test's ticks are published in 2025
        self.part = MemoryPartition(self.pipeline.timer_step_ms)
        self.out: list[tuple[complaints_pb2.ComplaintUpdated, dict[str, bytes]]] = []
        self.staff: list[tuple[str, staff_pb2.StaffNotificationEvent]] = []
        self.views: list[Any] = []
        self.offset = 0

    def feed(self, topic: str, message: Any, published: dt.datetime = T0, headers=()) -> list:
        before = len(self.out)
        self.offset += 1
        ms = int(published.timestamp() * 1000)
        key = getattr(message, "customer_id", "").encode() or None
        record = Record(topic, 0, self.offset, ms, key, tuple(headers))
        self.views += self.pipeline.step(
            self.part, record, message.SerializeToString(), self._produce
        )
        return self.out[before:]

    def tick(
        self, at: dt.datetime, source: str = f"{EVENT_TICKS}test", published: dt.datetime = T0
    ) -> list:
        m = clock_pb2.ClockTicked(source=source)
        m.occurred_at.FromDatetime(at)
        return self.feed(topics.CLOCK, m, published)

    def _produce(self, topic: str, key: Any, value: bytes | None, headers: Any) -> None:
        assert value is not None
        if topic == topics.STAFF_NOTIFICATIONS:
            self.staff.append((str(key), staff_pb2.StaffNotificationEvent.FromString(value)))
            return
        assert topic == "hvc.complaints.v1", (topic, headers)
        self.out.append((complaints_pb2.ComplaintUpdated.FromString(value), dict(headers)))

    def outcome(self, command_id: str) -> dict[str, Any]:
        found = [v.doc for v in self.views if v.collection == OUTCOMES and v.id == command_id]
        assert len(found) == 1, found
        return dict(found[0])

    def view(self, kid: str) -> dict[str, Any]:
        return dict([v.doc for v in self.views if v.collection == "complaints" and v.id == kid][-1])


def filing(cid: str, kid: str, at: dt.datetime = T0) -> care_pb2.ComplaintEvent:
    m = care_pb2.ComplaintEvent(event_id=f"f-{kid}", customer_id=cid)
    m.occurred_at.FromDatetime(at)
    m.complaint_filed.complaint_id = kid
    m.complaint_filed.channel = care_pb2.ComplaintFiled.HOTLINE_10086
    m.complaint_filed.filed_at.FromDatetime(at)
    return m


def decision(cid: str, tier: int, effective: dt.datetime) -> tiering_pb2.TierDecided:
    m = tiering_pb2.TierDecided(
        event_id=f"t-{cid}-{effective:%H%M}", customer_id=cid, new_tier=tier, ruleset_version="x"
    )
    m.occurred_at.FromDatetime(effective)
    m.effective_from.FromDatetime(effective)
    m.source, m.old_tier = tiering_pb2.TierDecided.PLAN, common_pb2.NONE
    return m


def transition(cid: str, kid: str, cmd_id: str, to: str, at: dt.datetime, **fields: Any):
    m = complaints_pb2.ComplaintCommand(event_id=cmd_id, customer_id=cid, complaint_id=kid)
    m.occurred_at.FromDatetime(at)
    t = m.transition_requested
    t.to, t.by = Status.Value(to), "agent-1"
    for k, v in fields.items():
        setattr(t, k, v)
    return m


def summary(out: list) -> list[tuple[str, str, str, int]]:
    return [
        (m.event_id, Status.Name(m.status), Sla.Name(m.sla_state), m.escalation_level)
        for m, _ in out
    ]


def test_milestones_fire_once_when_the_clock_reaches_them_and_a_redelivery_changes_nothing():
    run = Run()
    run.feed(TIERS, decision("c1", common_pb2.DIAMOND, T0 - 30 * 24 * 60 * MIN), T0 - MIN)
    got = run.feed(FILINGS, filing("c1", "K1"))
    assert summary(got) == [("K1 000000", "RECEIVED", "ON_TRACK", 0)]
    assert got[0][0].due_at.ToDatetime(UTC) == T0 + 30 * MIN  # DIAMOND: 30 min response
    assert run.feed(FILINGS, filing("c1", "K1")) == []  # redelivered
    assert run.tick(T0 + 23 * MIN + dt.timedelta(seconds=59)) == []
    assert summary(run.tick(T0 + 24 * MIN)) == [("K1:first_response:80", "RECEIVED", "AT_RISK", 0)]
    assert run.tick(T0 + 24 * MIN) == []  # a tick more fires nothing twice
    # A quiet hour, then one tick: every milestone passed meanwhile, once each, in order.
    assert summary(run.tick(T0 + 61 * MIN)) == [
        ("K1:first_response:100", "RECEIVED", "BREACHED", 1),
        ("K1:first_response:150", "RECEIVED", "BREACHED", 2),
        ("K1:first_response:200", "RECEIVED", "BREACHED", 3),
    ]
    assert run.view("K1")["sla"]["milestones"] == [
        "first_response:100",
        "first_response:150",
        "first_response:200",
        "first_response:80",
    ]


def test_each_milestone_notifies_the_person_of_the_level_it_reaches_once():
    """DOMAIN §6: at risk reaches the agent (the one who acted, else the duty agent), a breach
    the team lead, each further step the next level; a dispatched complaint's department head
    is that department's (the roster's `network_ops` for "Network Ops")."""
    run = Run(roster=load_roster(DEFAULT_ROSTER))

    def notified() -> list[tuple[str, str, str, str, str]]:
        got = [
            (
                key,
                m.event_id,
                m.staff_notified.role,
                staff_pb2.StaffNotified.Reason.Name(m.staff_notified.reason),
                m.staff_notified.params["percent"],
            )
            for key, m in run.staff
        ]
        assert all(m.staff_notified.staff_id == key for key, m in run.staff)
        run.staff.clear()
        return got

    run.feed(TIERS, decision("c1", common_pb2.DIAMOND, T0 - 30 * 24 * 60 * MIN), T0 - MIN)
    run.feed(FILINGS, filing("c1", "K1"))
    run.tick(T0 + 24 * MIN)
    assert notified() == [
        ("agent-duty", "sn:K1:first_response:80", "AGENT", "COMPLAINT_AT_RISK", "80")
    ]
    run.tick(T0 + 24 * MIN)
    run.feed(FILINGS, filing("c1", "K1"))
    assert notified() == []  # once per milestone
    run.tick(T0 + 61 * MIN)
    assert notified() == [
        ("lead-care-1", "sn:K1:first_response:100", "TEAM_LEAD", "COMPLAINT_BREACHED", "100"),
        (
            "head-customer-service",
            "sn:K1:first_response:150",
            "DEPARTMENT_HEAD",
            "COMPLAINT_BREACHED",
            "150",
        ),
        ("director-service", "sn:K1:first_response:200", "DIRECTOR", "COMPLAINT_BREACHED", "200"),
    ]
    run.feed(COMMANDS, transition("c1", "K1", "x1", "ACKNOWLEDGED", T0 + 62 * MIN))
    dispatch = transition("c1", "K1", "x2", "DISPATCHED", T0 + 63 * MIN, department="Network Ops")
    run.feed(COMMANDS, dispatch)
    run.tick(T0 + 36 * 60 * MIN)  # DIAMOND resolution: 24 h
    assert notified() == [
        ("agent-1", "sn:K1:resolution:80", "AGENT", "COMPLAINT_AT_RISK", "80"),
        ("lead-care-1", "sn:K1:resolution:100", "TEAM_LEAD", "COMPLAINT_BREACHED", "100"),
        (
            "head-network-ops",
            "sn:K1:resolution:150",
            "DEPARTMENT_HEAD",
            "COMPLAINT_BREACHED",
            "150",
        ),
    ]


def test_the_roster_names_every_level_and_a_channel_its_own_people():
    roster = load_roster(DEFAULT_ROSTER)
    for policy in POLICIES:
        roster.covers(policy.escalation_levels)
    assert roster.person("TEAM_LEAD", "MIIT", agent=None, department=None) == "lead-regulator"
    assert roster.person("AGENT", "MIIT", agent="a-7", department=None) == "a-7"
    assert roster.person("DEPARTMENT_HEAD", "APP_WEB", agent=None, department="nowhere") == (
        "head-customer-service"
    )
    assert [escalation_level(p, 80, 50, 4) for p in (80, 100, 150, 200, 250)] == [0, 1, 2, 3, 3]
    bare = roster.model_copy(update={"chain": {"AGENT": "a"}})
    with pytest.raises(ValueError, match="names nobody for"):
        bare.covers(POLICIES[0].escalation_levels)


def test_a_tick_of_the_other_clock_or_of_an_earlier_run_moves_no_time():
    run = Run()
    run.feed(FILINGS, filing("c1", "K1"))
    year = T0 + 365 * 24 * 60 * MIN
    assert run.tick(year, source="benefits@host") == []  # the wall clock's
    run.pipeline.tick_source = "event-time:complaints-stream@"  # its group's ticks only
    assert run.tick(year, source="event-time:complaints-stream-other@host") == []
    run.pipeline.started_ms = int((T0 + MIN).timestamp() * 1000)
    assert run.tick(year, source="event-time:complaints-stream@host") == []  # before it began
    mine = "event-time:complaints-stream@host"
    assert summary(run.tick(T0 + 24 * 60 * MIN * 0.8, mine, published=T0 + 2 * MIN)) == [
        ("K1:first_response:80", "RECEIVED", "AT_RISK", 0)  # NONE: 24 h response
    ]


def test_commands_are_decided_against_the_complaint_once_per_id():
    run = Run()
    run.feed(FILINGS, filing("c1", "K1"))
    ack = run.feed(COMMANDS, transition("c1", "K1", "x1", "ACKNOWLEDGED", T0 + MIN))
    assert summary(ack) == [("K1 000001", "ACKNOWLEDGED", "ON_TRACK", 0)]
    assert run.outcome("x1")["status"] == 200
    assert run.outcome("x1")["view"]["status"] == "ACKNOWLEDGED"
    assert run.feed(COMMANDS, transition("c1", "K1", "x1", "ACKNOWLEDGED", T0 + MIN)) == []
    assert run.feed(COMMANDS, transition("c1", "K1", "x2", "CLOSED", T0 + 2 * MIN)) == []
    refused = run.outcome("x2")
    assert refused["status"] == 409 and "ACKNOWLEDGED cannot become CLOSED" in refused["reason"]
    run.feed(COMMANDS, transition("c1", "K1", "x3", "DISPATCHED", T0 + 3 * MIN))
    assert "department" in run.outcome("x3")["reason"]
    dispatched = run.feed(
        COMMANDS, transition("c1", "K1", "x4", "DISPATCHED", T0 + 4 * MIN, department="net")
    )
    assert summary(dispatched) == [("K1 000002", "DISPATCHED", "ON_TRACK", 0)]
    done = complaints_pb2.ComplaintCommand(event_id="w1", customer_id="c1", complaint_id="K1")
    done.occurred_at.FromDatetime(T0 + 5 * MIN)
    done.work_order_completed.work_order_id = "K1-WO2"
    done.work_order_completed.result = "fixed"
    assert len(run.feed(COMMANDS, done)) == 1
    again = complaints_pb2.ComplaintCommand()
    again.CopyFrom(done)
    again.event_id = "w2"
    assert run.feed(COMMANDS, again) == []  # done already: applied, no change
    assert run.outcome("w2")["status"] == 200
    assert run.outcome("w2")["view"]["workOrders"][0]["result"] == "fixed"
    run.feed(COMMANDS, transition("c1", "K9", "x5", "ACKNOWLEDGED", T0))
    assert run.outcome("x5")["status"] == 404


def test_a_later_decision_tightens_the_targets_whatever_arrives_first():
    effective = T0 + 10 * MIN
    first, second = Run(), Run()
    first.feed(FILINGS, filing("c1", "K1"))
    first.feed(TIERS, decision("c1", common_pb2.DIAMOND, effective), T0 + MIN)
    second.feed(TIERS, decision("c1", common_pb2.DIAMOND, effective), T0 - MIN)
    second.feed(FILINGS, filing("c1", "K1"))

    def changes(run: Run) -> list[tuple[str, dt.datetime, dt.datetime]]:
        return [
            (m.event_id, m.occurred_at.ToDatetime(UTC), m.due_at.ToDatetime(UTC))
            for m, _ in run.out
        ]

    assert changes(first) == [
        ("K1 000000", T0, T0 + 24 * 60 * MIN),  # NONE: 24 h
        ("K1 000001", effective, T0 + 30 * MIN),  # DIAMOND: 30 min
    ]
    assert changes(second) == changes(first)


def test_a_parked_filing_waits_for_tiering_then_takes_the_decision_caused_before_it():
    gate = Gate(open_=False)
    run = Run(gate)
    assert run.feed(FILINGS, filing("c1", "K1"), T0) == []  # parked
    assert run.feed(FILINGS, filing("c2", "K2"), T0) == []  # behind it
    assert run.tick(T0 + MIN) == []
    caused = [(tracing.CAUSE, b"crm.customers.v1/0/7"), (tracing.CAUSE_TS, b"%d" % 0)]
    late = decision("c1", common_pb2.DIAMOND, T0 - 24 * 60 * MIN)
    run.feed(TIERS, late, T0 + 2 * MIN, caused)  # caused before the filing, arriving after
    assert gate.decisions == [4]  # its offset, told to the frontier
    gate.open = True
    got = run.tick(T0 + 3 * MIN)
    assert [m.event_id for m, _ in got] == ["K1 000000", "K2 000000"]
    assert got[0][0].due_at.ToDatetime(UTC) == T0 + 30 * MIN  # DIAMOND when filed
    # Its cause is the filing, not the tick that released it.
    assert got[0][1][tracing.CAUSE] == b"care.complaints.v1/0/1"
    assert got[1][1][tracing.CAUSE] == b"care.complaints.v1/0/2"
    assert run.part.kv.get("parked") == []


def test_a_customers_open_complaints_are_one_document_written_when_they_change():
    run = Run()
    run.feed(FILINGS, filing("c1", "K1"))
    run.feed(FILINGS, filing("c1", "K2", T0 + MIN))

    def opened() -> list[list[dict[str, Any]]]:
        return [v.doc["open"] for v in run.views if v.collection == "open_complaints"]

    assert opened()[-1] == [
        {"id": "K1", "status": "RECEIVED", "sla_state": "ON_TRACK"},
        {"id": "K2", "status": "RECEIVED", "sla_state": "ON_TRACK"},
    ]
    writes = len(opened())
    run.feed(COMMANDS, transition("c1", "K1", "x1", "ACKNOWLEDGED", T0 + 2 * MIN))
    assert opened()[-1][0]["status"] == "ACKNOWLEDGED" and len(opened()) == writes + 1
    run.feed(COMMANDS, transition("c1", "K1", "x2", "RESOLVED", T0 + 3 * MIN))
    assert [c["id"] for c in opened()[-1]] == ["K2"]  # resolved: its clocks stopped
    run.feed(COMMANDS, transition("c1", "K1", "x3", "CLOSED", T0 + 4 * MIN))
    assert len(opened()) == writes + 2  # closing a resolved one changes nothing here
    assert {v.id for v in run.views if v.collection == "open_complaints"} == {"c1"}


def test_filings_breaches_and_satisfaction_are_counted_per_month_once():
    run = Run()
    run.feed(TIERS, decision("c1", common_pb2.DIAMOND, T0 - 30 * 24 * 60 * MIN), T0 - MIN)
    run.feed(FILINGS, filing("c1", "K1"))
    run.feed(FILINGS, filing("c1", "K1"))  # redelivered: counted once
    run.tick(T0 + 61 * MIN)  # breached, and escalated twice more: one breach
    run.feed(COMMANDS, transition("c1", "K1", "x1", "RESOLVED", T0 + 62 * MIN))
    run.feed(COMMANDS, transition("c1", "K1", "x2", "CALLBACK_DONE", T0 + 63 * MIN, satisfaction=4))
    docs = {
        v.id: monthly.counts_of(v.doc) for v in run.views if v.collection == "complaints_monthly"
    }
    assert docs == {
        "2025-05 000": {
            "filed": 1,
            "filed|tier:DIAMOND": 1,
            "filed|channel:HOTLINE_10086": 1,
            "filed|category:OTHER": 1,
            "breached": 1,
            "breached|tier:DIAMOND": 1,
            "breached|channel:HOTLINE_10086": 1,
            "breached|category:OTHER": 1,
            "satisfaction:4": 1,
        }
    }
