"""Benefit rules without a broker or store: birthdays on the Shanghai calendar (across UTC
midnight, 29 February), restoration hours, suspension episodes, waivable usage, tiers in force,
and the catalogue's validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hvc.benefits import streams
from hvc.benefits.directory import Directory
from hvc.benefits.domain.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from hvc.benefits.domain.rules import birthday_in, restore_hours, tier_at, waivable
from hvc.benefits.entitlements import Entitlements
from hvc.common.clock import EventClock
from hvc.common.keyed import InOrder, Meta
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2, tiering_pb2, usage_pb2

CAT = load_catalogue(DEFAULT_CATALOGUE)
UTC = dt.UTC
META = Meta("t", 0, 0)


def unwrap(effect):
    """The partial an effect made in order per customer wraps."""
    return effect.effect if isinstance(effect, InOrder) else effect


def ts(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp())


def ent() -> Entitlements:
    return Entitlements(None, CAT, Directory(), lambda: dt.datetime.now(UTC))  # type: ignore[arg-type]


def test_a_29_february_birthday_falls_on_28_february_in_other_years():
    assert birthday_in(2024, 2, 29) == dt.date(2024, 2, 29)
    assert birthday_in(2025, 2, 29) == dt.date(2025, 2, 28)
    assert birthday_in(2025, 3, 1) == dt.date(2025, 3, 1)


def profile(cid: str, month: int, day: int) -> customers_pb2.CustomerEvent:
    m = customers_pb2.CustomerEvent(event_id=f"p-{cid}", customer_id=cid)
    m.occurred_at.FromSeconds(ts("2024-01-01T00:00:00"))
    m.customer_upserted.name = "n"
    m.customer_upserted.birthday.CopyFrom(common_pb2.Date(year=1990, month=month, day=day))
    m.customer_upserted.credit_restore_hours = 24
    return m


def test_birthdays_close_at_local_midnight_which_is_16_00_utc_the_day_before():
    e = ent()
    p = streams.Customers(e, EventClock(), 900)
    states: dict = {}
    for cid, (m, d) in {"A": (3, 15), "B": (3, 16), "L": (2, 29)}.items():
        states[cid] = {}
        p.apply(profile(cid, m, d), states[cid], META)
    assert e.directory.birthdays == {"A": (3, 15), "B": (3, 16), "L": (2, 29)}
    # The watermark passes 2025-03-14T16:00Z (local midnight of 03-15) plus the grace.
    before, after = ts("2025-03-14T15:00:00"), ts("2025-03-14T16:15:00")
    effects = p.close(states, before, after)
    got = sorted((f.func.__name__, f.args[0], str(f.args[1])) for f in map(unwrap, effects))  # type: ignore[attr-defined]
    assert got == [("_birthday", "A", "2025-03-15")]
    # Not before the grace has passed.
    p2 = streams.Customers(e, EventClock(), 900)
    assert p2.close(states, before, ts("2025-03-14T16:14:59")) == []
    # The next midnight: B's birthday, and the waived-amount notice for A's.
    effects = p.close(states, after, ts("2025-03-15T16:15:00"))
    got = sorted((f.func.__name__, f.args[0], str(f.args[1])) for f in map(unwrap, effects))  # type: ignore[attr-defined]
    assert got == [("_birthday", "B", "2025-03-16"), ("_waived_notice", "A", "2025-03-15")]
    # 29 February in 2025: celebrated on the 28th.
    effects = p.close(states, ts("2025-02-27T15:00:00"), ts("2025-02-27T16:15:00"))
    assert [(f.args[0], str(f.args[1])) for f in map(unwrap, effects)] == [("L", "2025-02-28")]  # type: ignore[attr-defined]


def decision(cid: str, eid: str, new: int, effective: int) -> tiering_pb2.TierDecided:
    m = tiering_pb2.TierDecided(event_id=eid, customer_id=cid, new_tier=new, ruleset_version="x")
    m.occurred_at.FromSeconds(effective)
    m.effective_from.FromSeconds(effective)
    return m


def test_a_decision_in_force_by_a_closed_birthday_evaluates_that_birthday_again():
    e = ent()
    customers, tiers = streams.Customers(e, EventClock(), 900), streams.Tiers(e, EventClock(), 900)
    state: dict = {}
    customers.apply(profile("A", 3, 15), state, META)
    states = {"A": state}
    midnight = ts("2025-03-14T16:00:00")  # local midnight of 03-15
    customers.close(states, midnight - 3600, midnight + 900)
    # The close is kept with the state (and reaches the log) for a late decision to find.
    assert state["bday_closed"] == ["2025-03-15", midnight, False, "NONE"]  # the tier it saw
    assert customers.take_touched() == {"A"}
    tier_state: dict = {}
    # Tiering's decision, effective an hour before that midnight, arrives after the close.
    effects = tiers.apply(decision("A", "t1", common_pb2.GOLD, midnight - 3600), tier_state, META)
    again = [unwrap(f) for f in effects if isinstance(f, InOrder)]
    assert [(f.func.__name__, f.args) for f in again] == [
        ("_birthday", ("A", dt.date(2025, 3, 15), dt.datetime.fromtimestamp(midnight, UTC)))
    ]
    # Once the end-of-day notice has closed too, it is evaluated again after the grant.
    customers.close(states, midnight + 900, midnight + 86400 + 900)
    assert state["bday_closed"] == ["2025-03-15", midnight, True, "NONE"]
    effects = tiers.apply(decision("A", "t2", common_pb2.PLATINUM, midnight), tier_state, META)
    again = [unwrap(f) for f in effects if isinstance(f, InOrder)]
    assert [f.func.__name__ for f in again] == ["_birthday", "_waived_notice"]
    assert again[1].args[2] == dt.datetime.fromtimestamp(midnight + 86400, UTC)
    # A decision in force only after the birthday changes nothing of it; nor does a
    # redelivered one.
    later = decision("A", "t3", common_pb2.DIAMOND, midnight + 1)
    assert not [f for f in tiers.apply(later, tier_state, META) if isinstance(f, InOrder)]
    assert tiers.apply(later, tier_state, META) == ()


def test_a_close_seen_without_the_tier_is_evaluated_again_when_the_decisions_are_loaded():
    """After a crash the decisions' partition may come to a process after the profiles'
    (the two streams' groups assign separately): a birthday closed meanwhile saw no tier, and
    the decision making it eligible is already in the loaded state, never applied again. The
    load evaluates such a close again; one that saw the tier now known is left alone."""
    e = ent()
    customers, tiers = streams.Customers(e, EventClock(), 900), streams.Tiers(e, EventClock(), 900)
    midnight = ts("2025-03-14T16:00:00")  # local midnight of 03-15
    states: dict = {"A": {}, "B": {}}
    customers.apply(profile("A", 3, 15), states["A"], META)
    customers.apply(profile("B", 3, 15), states["B"], META)
    customers.close(states, midnight - 3600, midnight + 900)
    assert states["A"]["bday_closed"][3] == "NONE"
    gold = {"timeline": {str(midnight - 86400): "GOLD"}}
    none = {"timeline": {str(midnight - 86400): "NONE"}}
    effects = tiers.loaded({"A": gold, "B": none})
    again = [unwrap(f) for f in effects]
    assert [(f.func.__name__, f.args[0]) for f in again] == [("_birthday", "A")]
    # Loaded the other way round (the decisions first, then a close an earlier owner saw
    # without them): the profiles' load finds it.
    e2 = ent()
    customers2, tiers2 = (
        streams.Customers(e2, EventClock(), 900),
        streams.Tiers(e2, EventClock(), 900),
    )
    assert tiers2.loaded({"A": gold}) == []
    effects = customers2.loaded({"A": states["A"]})
    assert [(unwrap(f).func.__name__, unwrap(f).args[0]) for f in effects] == [("_birthday", "A")]
    # A close that saw the tier in force is not evaluated again on a load.
    customers2.close({"A": states["A"]}, midnight - 3600, midnight + 900)
    assert states["A"]["bday_closed"][3] == "GOLD"
    assert customers2.loaded({"A": states["A"]}) == []


def test_a_suspension_seen_without_the_tier_is_restored_when_the_decision_comes():
    e = ent()
    accounts, tiers = streams.Accounts(e, EventClock(), 900), streams.Tiers(e, EventClock(), 900)
    state: dict = {}
    assert len(accounts.apply(suspension("s1"), state, META)) == 1
    suspended = ts("2025-05-01T00:00:00")
    assert state["last_episode"] == ["s1", suspended, "NONE"]
    # The decision in force at the suspension arrives after it: the restoration is decided
    # again (the same command id: idempotent by its episode).
    effects = tiers.apply(decision("C", "t1", common_pb2.GOLD, suspended - 60), {}, META)
    again = [unwrap(f) for f in effects if isinstance(f, InOrder)]
    assert [(f.func.__name__, f.args[:2]) for f in again] == [("_restore", ("C", "s1"))]
    # Or it was in the decisions' state already when their partition is loaded.
    e2 = ent()
    accounts2, tiers2 = (
        streams.Accounts(e2, EventClock(), 900),
        streams.Tiers(e2, EventClock(), 900),
    )
    assert accounts2.loaded({"C": state}) == []
    effects = tiers2.loaded({"C": {"timeline": {str(suspended - 60): "SILVER"}}})
    assert [(unwrap(f).func.__name__, unwrap(f).args[:2]) for f in effects] == [
        ("_restore", ("C", "s1"))
    ]
    # A tier that carries no restoration decides nothing again.
    e3 = ent()
    accounts3, tiers3 = (
        streams.Accounts(e3, EventClock(), 900),
        streams.Tiers(e3, EventClock(), 900),
    )
    accounts3.loaded({"C": state})
    assert tiers3.loaded({"C": {"timeline": {str(suspended - 60): "VIP"}}}) == []


def test_restoration_takes_the_longest_applicable_hours_for_eligible_tiers_only():
    assert restore_hours(CAT, "DIAMOND", 24) == 72
    assert restore_hours(CAT, "SILVER", 24) == 48
    assert restore_hours(CAT, "SILVER", 96) == 96  # the credit rating gives more: one, not both
    assert restore_hours(CAT, "VIP", 96) is None
    assert restore_hours(CAT, "NONE", 0) is None


def suspension(eid: str, reason=accounts_pb2.AccountSuspended.ARREARS) -> accounts_pb2.AccountEvent:
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id="C")
    m.occurred_at.FromSeconds(ts("2025-05-01T00:00:00"))
    m.account_suspended.reason = reason
    return m


def resumed(eid: str) -> accounts_pb2.AccountEvent:
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id="C")
    m.occurred_at.FromSeconds(ts("2025-05-05T00:00:00"))
    m.account_resumed.SetInParent()
    return m


def test_one_restoration_per_suspension_episode():
    p = streams.Accounts(ent(), EventClock(), 900)
    state: dict = {}
    assert len(p.apply(suspension("s1"), state, META)) == 1
    # Suspended again while the first restoration is still running: the same episode.
    assert not p.apply(suspension("s2"), state, META)
    assert not p.apply(suspension("s1"), state, META)  # redelivered
    assert not p.apply(suspension("k", accounts_pb2.AccountSuspended.KEEP_NUMBER), state, META)
    assert not p.apply(resumed("r1"), state, META)
    effects = p.apply(suspension("s3"), state, META)
    assert [f.args[1] for f in effects] == ["s3"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "roaming", "premium", "forwarded", "ok"),
    [
        ("VOICE", "DOMESTIC", False, False, True),
        ("DATA", "DOMESTIC", False, False, True),
        ("SMS", "DOMESTIC", False, False, True),
        ("VOICE", "HMT", False, False, False),
        ("DATA", "INTERNATIONAL", False, False, False),
        ("VOICE", "DOMESTIC", True, False, False),
        ("VOICE", "DOMESTIC", False, True, False),
        ("OTHER", "DOMESTIC", False, False, False),
    ],
)
def test_only_domestic_basic_usage_is_waived(kind, roaming, premium, forwarded, ok):
    assert waivable(kind, roaming, premium, forwarded) is ok


def test_the_tier_in_force_at_an_instant():
    timeline = [(100, "GOLD"), (200, "DIAMOND"), (300, "SILVER")]
    assert tier_at(timeline, 99) == ("NONE", 0)
    assert tier_at(timeline, 100) == ("GOLD", 100)
    assert tier_at(timeline, 299) == ("DIAMOND", 200)
    assert tier_at(timeline, 10**9) == ("SILVER", 300)


def test_the_catalogue_is_validated():
    raw = json.loads(DEFAULT_CATALOGUE.read_text())
    assert Catalogue.model_validate(raw).benefits["AIRPORT_LOUNGE"].quota["DIAMOND"] == 6
    bad = {**raw, "benefits": {**raw["benefits"], "AIRPORT_LOUNGE": {"kind": "yearly_quota"}}}
    with pytest.raises(ValueError, match="quota"):
        Catalogue.model_validate(bad)
    broken = {**raw, "benefits": {k: v for k, v in raw["benefits"].items() if k != "BIRTHDAY_FREE"}}
    with pytest.raises(ValueError, match="BIRTHDAY_FREE"):
        Catalogue.model_validate(broken)


def usage(cid: str, eid: str, at: str, fen: int) -> usage_pb2.UsageRecorded:
    m = usage_pb2.UsageRecorded(
        event_id=eid,
        customer_id=cid,
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=usage_pb2.UsageRecorded.DOMESTIC,
        charged_fen=fen,
    )
    m.occurred_at.FromSeconds(ts(at))
    return m


def test_a_birthday_charge_redelivered_however_late_counts_once():
    e = ent()
    e.directory.birthdays["A"] = (3, 15)
    p = streams.UsageProc(e, EventClock(), 900)
    state: dict = {}
    day = [usage("A", f"u{i}", "2025-03-15T02:00:00", 10) for i in range(40)]  # local 10:00
    for m in day:
        p.apply(m, state, META)
    assert e.directory.birthday_usage[("A", "2025-03-15")] == 400
    before = json.loads(json.dumps(state))
    for m in day:  # the whole day again, behind 40 newer records
        p.apply(m, state, META)
    assert state == before and e.directory.birthday_usage[("A", "2025-03-15")] == 400
    # Two later birthdays are kept; the first is dropped with its ids, and a record of it
    # redelivered after that changes nothing.
    p.apply(usage("A", "v", "2026-03-15T02:00:00", 7), state, META)
    p.apply(usage("A", "w", "2027-03-15T02:00:00", 5), state, META)
    assert state["bday"] == {"2026-03-15": 7, "2027-03-15": 5}
    assert set(state["bday_ids"]) == {"2026-03-15", "2027-03-15"}
    kept = json.loads(json.dumps(state))
    p.apply(day[0], state, META)
    assert state == kept


def test_a_birthday_charge_counts_the_same_whether_it_comes_before_or_after_the_profile():
    e = ent()
    p = streams.UsageProc(e, EventClock(), 900)
    state: dict = {}
    # The usage topic ahead of the customers topic: the profile (and birthday) not known yet.
    early = [usage("A", f"u{i}", "2025-03-15T02:00:00", 10) for i in range(3)]
    for m in early:
        p.apply(m, state, META)
    e.directory.birthdays["A"] = (3, 15)  # the profile arrives
    p.apply(usage("A", "u3", "2025-03-15T03:00:00", 10), state, META)
    assert e.directory.birthday_usage[("A", "2025-03-15")] == 40
    before = json.loads(json.dumps(state))
    for m in early:  # redelivered, now that the birthday is known
        p.apply(m, state, META)
    assert state == before and e.directory.birthday_usage[("A", "2025-03-15")] == 40
