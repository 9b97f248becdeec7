"""The stream processors' rules without a broker: signals of absence at the daily and monthly
closes of a partition's event-time watermark, on the Shanghai calendar."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from hvc.common.codec import InvalidEvent
from hvc.events.v1 import accounts_pb2, calls_pb2, common_pb2, customers_pb2, usage_pb2
from hvc.warnings import streams
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.domain.signals import Signal

RULES = load_rules(DEFAULT_RULES)
UTC = dt.UTC
GRACE = 900
LATENESS = 2 * 86_400


@dataclass
class Raised:
    """What the processors raised, in order."""

    raised: list[tuple[str, Signal, dt.datetime]] = field(default_factory=list)

    def take(self, raises) -> None:
        self.raised += [(x.customer_id, x.signal, x.at) for x in raises]


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def ts(s: str) -> int:
    return int(at(s).timestamp())


def account(when: str, **payload) -> accounts_pb2.AccountEvent:
    m = accounts_pb2.AccountEvent(event_id=f"e-{when}", customer_id="C1")
    m.occurred_at.FromDatetime(at(when))
    for k, v in payload.items():
        getattr(m, k).CopyFrom(v)
    return m


def bill(when: str, period: str, amount: int, due: dt.date) -> accounts_pb2.AccountEvent:
    b = accounts_pb2.BillIssued(
        bill_id=f"B{period}",
        period=period,
        amount_fen=amount,
        countable_fen=amount,
        due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
    )
    return account(when, bill_issued=b)


def payment(when: str, amount: int, bill_id: str | None = None) -> accounts_pb2.AccountEvent:
    p = accounts_pb2.PaymentReceived(amount_fen=amount)
    if bill_id:
        p.bill_id = bill_id
    return account(when, payment_received=p)


def codes(raiser: Raised) -> list[tuple[str, str, str]]:
    return [(s.code.value, s.period, a.isoformat()) for _, s, a in raiser.raised]


DUE = dt.date(2025, 3, 20)  # the deadline is local midnight 03-21 = 2025-03-20T16:00Z


@pytest.mark.parametrize(
    ("paid", "overdue"),
    [("2025-03-20T15:59:59", False), ("2025-03-20T16:00:01", True)],
)
def test_overdue_a_bill_paid_one_second_before_and_after_its_due_date(paid, overdue):
    r = Raised()
    p = streams.Accounts(RULES, GRACE)
    state: dict = {}
    r.take(p.apply(bill("2025-03-01T02:00:00", "2025-02", 10_000, DUE), state))
    r.take(p.apply(payment(paid, 10_000), state))
    # The watermark passes local midnight of 03-21 plus the grace.
    r.take(p.close({"C1": state}, ts("2025-03-20T15:00:00"), ts("2025-03-20T16:15:00")))
    got = [c for c in codes(r) if c[0] == "OVERDUE"]
    assert got == ([("OVERDUE", "2025-02", "2025-03-20T16:00:00+00:00")] if overdue else [])


def test_closes_wait_for_the_grace_and_fire_once_per_bill():
    r = Raised()
    p = streams.Accounts(RULES, GRACE)
    state: dict = {}
    r.take(p.apply(bill("2025-03-01T02:00:00", "2025-02", 10_000, DUE), state))
    r.take(p.close({"C1": state}, ts("2025-03-20T15:00:00"), ts("2025-03-20T16:14:59")))
    assert [c for c in codes(r) if c[0] == "OVERDUE"] == []  # within the grace
    r.take(p.close({"C1": state}, ts("2025-03-20T16:14:59"), ts("2025-03-20T16:15:00")))
    r.take(p.close({"C1": state}, ts("2025-03-20T16:15:00"), ts("2025-04-30T00:00:00")))
    assert [c for c in codes(r) if c[0] == "OVERDUE"] == [
        ("OVERDUE", "2025-02", "2025-03-20T16:00:00+00:00")
    ]


def test_payment_due_soon_at_the_day_start_three_days_before_not_four():
    r = Raised()
    p = streams.Accounts(RULES, GRACE)
    state: dict = {}
    r.take(p.apply(bill("2025-03-01T02:00:00", "2025-02", 10_000, DUE), state))
    # Local 03-16 starts at 03-15T16:00Z: 4 days left.
    r.take(p.close({"C1": state}, ts("2025-03-15T12:00:00"), ts("2025-03-15T16:20:00")))
    assert codes(r) == []
    r.take(p.close({"C1": state}, ts("2025-03-15T16:20:00"), ts("2025-03-16T16:20:00")))
    assert codes(r) == [("PAYMENT_DUE_SOON", "2025-02", "2025-03-16T16:00:00+00:00")]
    assert r.raised[0][1].figures == {"days_left": 3}


def test_a_paid_bill_is_neither_due_soon_nor_overdue_and_payments_go_oldest_first():
    r = Raised()
    p = streams.Accounts(RULES, GRACE)
    state: dict = {}
    r.take(p.apply(bill("2025-02-01T02:00:00", "2025-01", 3_000, dt.date(2025, 2, 20)), state))
    r.take(p.apply(bill("2025-03-01T02:00:00", "2025-02", 4_000, DUE), state))
    r.take(p.apply(payment("2025-02-10T00:00:00", 5_000), state))  # unallocated
    assert streams.settlement(state) == {"2025-01": ts("2025-02-10T00:00:00"), "2025-02": None}
    r.take(p.apply(payment("2025-03-10T00:00:00", 2_000, "B2025-02"), state))
    assert streams.settlement(state)["2025-02"] == ts("2025-03-10T00:00:00")
    r.take(p.close({"C1": state}, ts("2025-03-01T00:00:00"), ts("2025-04-01T00:00:00")))
    assert codes(r) == []


def test_a_redelivered_payment_or_bill_changes_nothing_and_order_does_not_matter():
    p = streams.Accounts(RULES, GRACE)
    events = [
        bill("2025-02-01T02:00:00", "2025-01", 3_000, dt.date(2025, 2, 20)),
        bill("2025-03-01T02:00:00", "2025-02", 4_000, DUE),
        payment("2025-02-10T00:00:00", 5_000),
        payment("2025-03-10T00:00:00", 1_000),
    ]
    once: dict = {}
    for e in events:
        p.apply(e, once)
    twice: dict = {}
    for e in reversed(events + events):
        p.apply(e, twice)
    assert (
        streams.settlement(once)
        == streams.settlement(twice)
        == {
            "2025-01": ts("2025-02-10T00:00:00"),
            "2025-02": None,  # 2,000 + 1,000 of 4,000
        }
    )


def test_negative_payment_is_invalid_and_changes_nothing():
    p = streams.Accounts(RULES, GRACE)
    state: dict = {}
    with pytest.raises(InvalidEvent):
        p.apply(payment("2025-03-19T00:00:00", -1), state)
    assert state == {}


def usage(when: str, volume: int, kind=usage_pb2.UsageRecorded.DATA) -> usage_pb2.UsageRecorded:
    m = usage_pb2.UsageRecorded(event_id=f"u-{when}-{volume}", customer_id="C1", kind=kind)
    m.volume_bytes = volume
    m.occurred_at.FromDatetime(at(when))
    return m


@pytest.mark.parametrize(("current", "fires"), [(499, True), (500, False)])
def test_data_drop_at_the_monthly_close_below_half_of_the_3_month_mean(current, fires):
    r = Raised()
    p = streams.Usage(RULES, GRACE, LATENESS)
    state: dict = {}
    for month in ("2024-12", "2025-01", "2025-02"):
        r.take(p.apply(usage(f"{month}-10T00:00:00", 1_000), state))
    # Local midnight of 03-01 is 02-28T16:00Z: a usage record at 15:59:59Z belongs to February.
    r.take(p.apply(usage("2025-03-10T00:00:00", current - 1), state))
    r.take(p.apply(usage("2025-03-31T15:59:59", 1), state))
    r.take(p.apply(usage("2025-03-31T16:00:00", 10**9), state))  # April, local
    r.take(p.apply(usage("2025-03-31T00:00:00", 0, usage_pb2.UsageRecorded.VOICE), state))
    r.take(p.apply(usage("2025-03-10T00:00:00", current - 1), state))  # redelivered
    assert state["m"]["2025-03"] == current
    r.take(p.close({"C1": state}, ts("2025-03-31T12:00:00"), ts("2025-03-31T16:15:00")))
    assert codes(r) == ([("DATA_DROP", "2025-03", "2025-03-31T16:00:00+00:00")] if fires else [])


def test_usage_redelivered_behind_many_newer_records_within_the_horizon_counts_once():
    r = Raised()
    p = streams.Usage(RULES, GRACE, LATENESS)
    state: dict = {}
    day = [usage(f"2025-03-10T{h:02d}:{m:02d}:00", 1_000) for h in range(10) for m in (0, 30)]
    for ev in day:
        r.take(p.apply(ev, state))
    for ev in day:  # all 20 again, the first of them behind 19 newer ones
        r.take(p.apply(ev, state))
    assert state["m"]["2025-03"] == 20 * 1_000


def test_usage_older_than_the_horizon_is_late_not_counted_and_ids_are_kept_only_within_it():
    r = Raised()
    from hvc.warnings.streams import LATE_EVENTS

    p = streams.Usage(RULES, GRACE, LATENESS)
    state: dict = {}
    for d in range(1, 11):
        r.take(p.apply(usage(f"2025-03-{d:02d}T12:00:00", 1_000), state))
    # Only the records within two days of the newest (03-08 .. 03-10) keep their ids.
    assert sorted(state["seen"]) == [f"u-2025-03-{d:02d}T12:00:00-1000" for d in (8, 9, 10)]
    late = LATE_EVENTS.labels("billing.usage.v1")
    before = late._value.get()
    r.take(p.apply(usage("2025-03-02T12:00:00", 1_000), state))  # a copy, or a late first
    r.take(p.apply(usage("2025-03-08T13:00:00", 5), state))  # late, within the horizon
    assert state["m"]["2025-03"] == 10 * 1_000 + 5
    assert late._value.get() == before + 1


def test_data_drop_needs_three_full_months_and_counts_a_silent_month_as_zero():
    r = Raised()
    p = streams.Usage(RULES, GRACE, LATENESS)
    young: dict = {}
    r.take(p.apply(usage("2025-01-10T00:00:00", 1_000), young))
    silent: dict = {}
    for month in ("2024-11", "2024-12"):
        r.take(p.apply(usage(f"{month}-10T00:00:00", 3_000), silent))
    # silent: Jan 0, Feb 0, Mar 0 against Dec 3000, Jan 0, Feb 0 -> mean 1000, 0 < 500.
    states = {"young": young, "silent": silent}
    r.take(p.close(states, ts("2025-03-31T12:00:00"), ts("2025-04-02T00:00:00")))
    assert [(cid, s.code.value, s.period) for cid, s, _ in r.raised] == [
        ("silent", "DATA_DROP", "2025-03")
    ]


def test_contract_expiry_at_the_monthly_close_within_three_months():
    r = Raised()
    p = streams.Customers(RULES, GRACE)
    state: dict = {}
    for cid, ends in (("K1", dt.date(2025, 7, 1)), ("K2", dt.date(2025, 7, 2))):
        m = customers_pb2.CustomerEvent(event_id=cid, customer_id="C1")
        m.occurred_at.FromDatetime(at("2025-01-01T00:00:00"))
        m.contract_signed.contract_id = cid
        m.contract_signed.ends_on.CopyFrom(
            common_pb2.Date(year=ends.year, month=ends.month, day=ends.day)
        )
        r.take(p.apply(m, state))
    r.take(p.close({"C1": state}, ts("2025-03-31T12:00:00"), ts("2025-03-31T16:15:00")))
    assert [(s.code.value, s.period, s.summary) for _, s, _ in r.raised] == [
        ("CONTRACT_EXPIRY", "2025-04", "contract K1 ends on 2025-07-01")
    ]


def test_an_ended_contract_is_dropped_and_a_replay_of_its_signature_does_not_bring_it_back():
    r = Raised()
    p = streams.Customers(RULES, GRACE)
    state: dict = {}
    m = customers_pb2.CustomerEvent(event_id="K9", customer_id="C1")
    m.occurred_at.FromDatetime(at("2025-01-01T00:00:00"))
    m.contract_signed.contract_id = "K9"
    m.contract_signed.ends_on.CopyFrom(common_pb2.Date(year=2025, month=2, day=10))
    r.take(p.apply(m, state))
    r.take(p.close({"C1": state}, ts("2025-02-28T12:00:00"), ts("2025-02-28T16:15:00")))
    assert state["contracts"] == {} and state["ended"] == ["K9 2025-02-10"]
    r.take(p.apply(m, state))  # the whole input, again
    assert state["contracts"] == {}
    m.contract_signed.ends_on.CopyFrom(common_pb2.Date(year=2027, month=2, day=10))
    r.take(p.apply(m, state))  # the same contract renewed
    assert state["contracts"] == {"K9": "2027-02-10"}


def call(when: str, forwarded_to: str | None = None, other="13800138000", seconds=30):
    m = calls_pb2.CallRecorded(
        event_id=f"c-{when}", customer_id="C1", other_number=other, duration_s=seconds
    )
    m.occurred_at.FromDatetime(at(when))
    if forwarded_to:
        m.forwarded_to = forwarded_to
    return m


@pytest.mark.parametrize(
    ("days", "fires"),
    [
        # 23:59 and 00:01 local across a month end, then the 3rd day.
        (("2025-03-31T15:59:00", "2025-03-31T16:01:00", "2025-04-01T16:30:00"), True),
        (("2025-03-31T15:59:00", "2025-03-31T16:01:00"), False),  # only 2 days
        (("2025-03-30T10:00:00", "2025-03-31T10:00:00", "2025-04-01T17:00:00"), False),  # a gap
    ],
)
def test_forwarding_on_two_versus_three_local_days_across_midnight_and_month_end(days, fires):
    r = Raised()
    p = streams.Calls(RULES, GRACE)
    state: dict = {}
    for d in days:
        r.take(p.apply(call(d, forwarded_to="+86 189 1234 5678"), state))
        r.take(p.apply(call(d, forwarded_to="13800138000"), state))  # own network: ignored
    got = [(s.code.value, s.period) for _, s, _ in r.raised]
    assert got == ([("FORWARD_TO_RIVAL", "2025-04-02")] if fires else [])


def test_an_ordinary_call_leaves_no_state_and_a_repeat_is_not_raised_twice():
    r = Raised()
    p = streams.Calls(RULES, GRACE)
    state: dict = {}
    assert p.apply(call("2025-03-01T04:00:00"), state) == () and state == {}
    r.take(p.apply(call("2025-03-01T04:00:00", other="10010", seconds=61), state))
    r.take(p.apply(call("2025-03-01T05:00:00", other="10010", seconds=600), state))
    assert [(s.code.value, s.period) for _, s, _ in r.raised] == [
        ("RIVAL_SERVICE_CALL", "2025-03-01")
    ]


def upserted(when: str, msisdn: str, manager: str) -> customers_pb2.CustomerEvent:
    m = customers_pb2.CustomerEvent(event_id=f"u-{when}", customer_id="C1")
    m.occurred_at.FromDatetime(at(when))
    m.customer_upserted.msisdns.append(msisdn)
    m.customer_upserted.name = "Zhang San"
    m.customer_upserted.manager_id = manager
    return m


def test_the_profile_keeps_numbers_and_name_and_a_late_older_upsert_does_not_replace_it():
    r = Raised()
    p = streams.Customers(RULES, GRACE)
    state: dict = {}
    r.take(p.apply(upserted("2025-02-01T00:00:00", "13900000002", "M2"), state))
    r.take(p.apply(upserted("2025-01-01T00:00:00", "13900000001", "M1"), state))
    prof = state["profile"]
    assert (prof["msisdns"], prof["name"], prof["manager_id"]) == (
        ["13900000002"],
        "Zhang San",
        "M2",
    )
    assert state["profile"] is prof
