"""Benefit rules without a broker or store: the benefits pipeline (hvc.common.streams in
memory) on the Shanghai calendar (birthdays across UTC midnight, 29 February), late tier
decisions, suspension episodes, waivable usage, grants, revocations and claim expiries; and
the pure rules: restoration hours, tiers in force, the catalogue's validation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from hvc.benefits.domain.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from hvc.benefits.domain.rules import birthday_in, restore_hours, tier_at, waivable
from hvc.benefits.pipeline import INPUTS, BenefitsHandler
from hvc.common.streams import MemoryPartition, Pipeline, Record
from hvc.events.v1 import (
    accounts_pb2,
    benefits_pb2,
    billing_commands_pb2,
    common_pb2,
    customers_pb2,
    notifications_pb2,
    tiering_pb2,
    usage_pb2,
)

CAT = load_catalogue(DEFAULT_CATALOGUE)
UTC = dt.UTC
CRM, TIERS, ACCOUNTS, USAGE, BENEFITS = INPUTS
GRACE = 900


def ts(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp())


class Run:
    """The pipeline over one partition in memory; what it publishes, decoded."""

    def __init__(self) -> None:
        self.pipeline = Pipeline.of("benefits", INPUTS, BenefitsHandler(CAT, GRACE))
        self.part = MemoryPartition()
        self.out: list[tuple[str, Any]] = []
        self.views: list[Any] = []
        self.offset = 0

    def feed(self, *events: tuple[str, Any]) -> list[tuple[str, Any]]:
        """Feed the records; what they published."""
        before = len(self.out)
        for topic, message in events:
            self.offset += 1
            record = Record(topic, 0, self.offset, 0, message.customer_id.encode())
            self.views += self.pipeline.step(
                self.part, record, message.SerializeToString(), self._produce
            )
        return self.out[before:]

    def _produce(self, topic: str, key: Any, value: bytes | None, headers: Any) -> None:
        assert not topic.endswith(".dlq"), headers
        kind = {
            BENEFITS: benefits_pb2.BenefitEvent,
            "billing.commands.v1": billing_commands_pb2.BillingCommand,
            "hvc.notifications.v1": notifications_pb2.NotificationRequested,
        }[topic]
        self.out.append((topic, kind.FromString(value)))

    def state(self, cid: str) -> dict[str, Any]:
        return self.part.load(cid) or {}

    def ledger(self) -> dict[str, dict[str, Any]]:
        return {v.id: dict(v.doc) for v in self.views if v.collection == "ledger"}


def ids(out: list[tuple[str, Any]]) -> list[str]:
    return [m.event_id for _, m in out]


def profile(cid: str, month: int, day: int, at: str = "2024-01-01T00:00:00", eid: str = ""):
    m = customers_pb2.CustomerEvent(event_id=eid or f"p-{cid}-{at}", customer_id=cid)
    m.occurred_at.FromSeconds(ts(at))
    m.customer_upserted.name = "n"
    m.customer_upserted.birthday.CopyFrom(common_pb2.Date(year=1992, month=month, day=day))
    m.customer_upserted.credit_restore_hours = 24
    return (CRM, m)


def decision(cid: str, eid: str, new: int, effective: int):
    m = tiering_pb2.TierDecided(
        event_id=eid,
        customer_id=cid,
        old_tier=common_pb2.NONE,
        new_tier=new,
        ruleset_version="x",
        source=tiering_pb2.TierDecided.PLAN,
    )
    m.occurred_at.FromSeconds(effective)
    m.effective_from.FromSeconds(effective)
    return (TIERS, m)


def suspension(eid: str, at: str = "2025-05-01T00:00:00", reason=None, cid: str = "C"):
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id=cid)
    m.occurred_at.FromSeconds(ts(at))
    m.account_suspended.reason = reason or accounts_pb2.AccountSuspended.ARREARS
    return (ACCOUNTS, m)


def resumed(eid: str, at: str = "2025-05-05T00:00:00"):
    m = accounts_pb2.AccountEvent(event_id=eid, customer_id="C")
    m.occurred_at.FromSeconds(ts(at))
    m.account_resumed.SetInParent()
    return (ACCOUNTS, m)


def usage(cid: str, eid: str, at: str, fen: int, roaming=usage_pb2.UsageRecorded.DOMESTIC):
    m = usage_pb2.UsageRecorded(
        event_id=eid,
        customer_id=cid,
        kind=usage_pb2.UsageRecorded.DATA,
        roaming=roaming,
        charged_fen=fen,
    )
    m.occurred_at.FromSeconds(ts(at))
    return (USAGE, m)


def claimed(cid: str, slot: str, code: str, tier: int, valid_to: int | None):
    m = benefits_pb2.BenefitEvent(event_id=slot, customer_id=cid)
    m.occurred_at.FromSeconds(ts("2025-06-01T00:00:00"))
    c = m.benefit_claimed
    c.grant_id, c.code, c.tier, c.quantity = slot, code, tier, 1
    if valid_to is not None:
        c.valid_to.FromSeconds(valid_to)
    return (BENEFITS, m)


def test_a_29_february_birthday_falls_on_28_february_in_other_years():
    assert birthday_in(2024, 2, 29) == dt.date(2024, 2, 29)
    assert birthday_in(2025, 2, 29) == dt.date(2025, 2, 28)
    assert birthday_in(2025, 3, 1) == dt.date(2025, 3, 1)


def test_birthdays_close_at_local_midnight_which_is_16_00_utc_the_day_before():
    r = Run()
    gold = ts("2024-06-01T00:00:00")
    for cid, (m, d) in {"A": (3, 15), "B": (3, 16), "L": (2, 29)}.items():
        r.feed(decision(cid, f"t-{cid}", common_pb2.GOLD, gold), profile(cid, m, d))
    r.out.clear()
    # 29 February in 2025: celebrated on the 28th (local midnight 02-27T16:00Z), grace passed.
    out = r.feed(usage("X", "x0", "2025-02-27T16:16:00", 0))
    assert ids(out) == [
        "L|GRANT|BIRTHDAY_FREE|2025-02-28",
        "L|COMMAND|WAIVE|2025-02-28",
        "L|NOTICE|BIRTHDAY|2025-02-28",
    ]
    out = r.feed(usage("X", "xl", "2025-02-28T16:16:00", 0))  # the end of L's day
    assert ids(out) == ["L|NOTICE|BIRTHDAY_WAIVED|2025-02-28"]
    # Local midnight of 03-15 is 03-14T16:00Z; not before the grace (and the timers' minute).
    assert r.feed(usage("X", "x1", "2025-03-14T16:14:59", 0)) == []
    out = r.feed(usage("X", "x2", "2025-03-14T16:16:00", 0))
    assert ids(out) == [
        "A|GRANT|BIRTHDAY_FREE|2025-03-15",
        "A|COMMAND|WAIVE|2025-03-15",
        "A|NOTICE|BIRTHDAY|2025-03-15",
    ]
    grant = out[0][1].benefit_granted
    assert grant.valid_from.ToSeconds() == ts("2025-03-14T16:00:00")
    assert common_pb2.Tier.Name(grant.tier) == "GOLD"
    command = out[1][1]
    assert command.occurred_at.ToSeconds() == ts("2025-03-14T16:00:00")
    # A's birthday usage (local 03-15), then the next midnight: B's birthday, and the notice
    # of what A was waived; usage abroad or of another day is not.
    r.feed(
        usage("A", "u1", "2025-03-15T02:00:00", 150),
        usage("A", "u2", "2025-03-15T03:00:00", 250),
        usage("A", "u3", "2025-03-15T04:00:00", 999, usage_pb2.UsageRecorded.HMT),
        usage("A", "u4", "2025-03-15T16:05:00", 777),  # local 03-16
    )
    out = r.feed(usage("X", "x3", "2025-03-15T16:16:00", 0))
    got = {m.event_id: m for _, m in out}
    assert set(got) == {
        "B|GRANT|BIRTHDAY_FREE|2025-03-16",
        "B|COMMAND|WAIVE|2025-03-16",
        "B|NOTICE|BIRTHDAY|2025-03-16",
        "A|NOTICE|BIRTHDAY_WAIVED|2025-03-15",
    }
    assert got["A|NOTICE|BIRTHDAY_WAIVED|2025-03-15"].params["amount_fen"] == "400"
    # Next year's birthday is set: a year on, A's again.
    out = r.feed(usage("X", "x4", "2026-03-14T16:16:00", 0))
    assert "A|GRANT|BIRTHDAY_FREE|2026-03-15" in ids(out)
    assert r.ledger()["A|GRANT|BIRTHDAY_FREE|2025-03-15"]["tier"] == "GOLD"


def test_a_birthday_without_an_eligible_tier_grants_nothing_and_sends_no_waived_notice():
    r = Run()
    r.feed(profile("A", 3, 15))
    assert r.feed(usage("A", "u", "2025-03-15T02:00:00", 10)) == []
    assert r.feed(usage("X", "x", "2025-03-15T16:16:00", 0)) == []
    assert r.state("A")["bday_closed"] == ["2025-03-15", ts("2025-03-14T16:00:00"), True]


def test_a_profile_that_moves_the_birthday_cancels_the_close_set_for_the_old_one():
    r = Run()
    gold = ts("2024-06-01T00:00:00")
    r.feed(decision("A", "t", common_pb2.GOLD, gold), profile("A", 3, 15))
    r.feed(profile("A", 4, 1, at="2024-02-01T00:00:00"))  # corrected by the CRM
    assert r.feed(usage("X", "x", "2025-03-15T00:00:00", 0)) == []
    out = r.feed(usage("X", "y", "2025-04-01T00:00:00", 0))
    assert ids(out)[0] == "A|GRANT|BIRTHDAY_FREE|2025-04-01"
    # Moved back: one close, not two.
    r.feed(profile("A", 3, 15, at="2025-05-01T00:00:00"), profile("A", 4, 1, at="2025-05-02"))
    r.feed(profile("A", 3, 15, at="2025-05-03T00:00:00"))
    out = r.feed(usage("X", "z", "2026-03-15T00:00:00", 0))
    assert ids(out).count("A|GRANT|BIRTHDAY_FREE|2026-03-15") == 1


def test_a_decision_in_force_by_a_closed_birthday_decides_that_birthday_again():
    r = Run()
    midnight = ts("2025-03-14T16:00:00")  # local midnight of 03-15
    r.feed(profile("A", 3, 15))
    assert r.feed(usage("X", "x", "2025-03-14T16:16:00", 0)) == []  # no tier: nothing
    assert r.state("A")["bday_closed"] == ["2025-03-15", midnight, False]
    # Tiering's decision, effective an hour before that midnight, arrives after the close.
    out = r.feed(decision("A", "t1", common_pb2.GOLD, midnight - 3600))
    assert "A|GRANT|BIRTHDAY_FREE|2025-03-15" in ids(out)
    assert "A|COMMAND|WAIVE|2025-03-15" in ids(out)
    # A later decision in force by then sends nothing of the birthday again (granted); a
    # downgrade known late takes nothing back; nor does a redelivered one.
    out = r.feed(decision("A", "t2", common_pb2.NONE, midnight - 60))
    assert not [i for i in ids(out) if "BIRTHDAY" in i]
    assert r.feed(decision("A", "t2", common_pb2.NONE, midnight - 60)) == []
    # Decided late after the end of the day too: the grant, then the amount waived.
    r2 = Run()
    r2.feed(profile("B", 3, 15), usage("B", "u", "2025-03-15T02:00:00", 30))
    r2.feed(usage("X", "x", "2025-03-15T16:16:00", 0))
    out = r2.feed(decision("B", "t", common_pb2.SILVER, midnight - 1))
    birthday = [i for i in ids(out) if "BIRTHDAY" in i or "WAIVE" in i]
    assert birthday == [
        "B|GRANT|BIRTHDAY_FREE|2025-03-15",
        "B|COMMAND|WAIVE|2025-03-15",
        "B|NOTICE|BIRTHDAY|2025-03-15",
        "B|NOTICE|BIRTHDAY_WAIVED|2025-03-15",
    ]
    assert out[-1][1].params["amount_fen"] == "30"
    # In force only after the birthday: nothing of it.
    r3 = Run()
    r3.feed(profile("C", 3, 15), usage("X", "x", "2025-03-14T16:16:00", 0))
    out = r3.feed(decision("C", "t", common_pb2.GOLD, midnight + 1))
    assert not [i for i in ids(out) if "BIRTHDAY" in i]


def test_a_suspension_decided_without_the_tier_is_restored_when_the_decision_comes():
    r = Run()
    suspended = ts("2025-05-01T00:00:00")
    assert r.feed(suspension("s1")) == []  # no tier: no restoration
    out = r.feed(decision("C", "t1", common_pb2.GOLD, suspended - 60))
    restore = [m for t, m in out if t == "billing.commands.v1"]
    assert [m.event_id for m in restore] == ["C|COMMAND|RESTORE|s1"]
    assert restore[0].restore_service.hours == 72
    # Once restored, a later decision in force by then sends nothing more.
    out = r.feed(decision("C", "t2", common_pb2.SILVER, suspended - 30))
    assert not [m for t, m in out if t == "billing.commands.v1"]
    # A tier that carries no restoration decides nothing.
    r2 = Run()
    r2.feed(suspension("s1"))
    out = r2.feed(decision("C", "t1", common_pb2.VIP, suspended - 60))
    assert not [m for t, m in out if t == "billing.commands.v1"]


def test_restoration_takes_the_longest_applicable_hours_for_eligible_tiers_only():
    assert restore_hours(CAT, "DIAMOND", 24) == 72
    assert restore_hours(CAT, "SILVER", 24) == 48
    assert restore_hours(CAT, "SILVER", 96) == 96  # the credit rating gives more: one, not both
    assert restore_hours(CAT, "VIP", 96) is None
    assert restore_hours(CAT, "NONE", 0) is None


def test_one_restoration_per_suspension_episode():
    r = Run()
    r.feed(decision("C", "t", common_pb2.SILVER, ts("2025-01-01T00:00:00")))
    out = r.feed(suspension("s1"))
    assert ids(out) == ["C|COMMAND|RESTORE|s1"] and out[0][1].restore_service.hours == 48
    # Suspended again while the first restoration is still running: the same episode.
    assert r.feed(suspension("s2", "2025-05-02T00:00:00")) == []
    assert r.feed(suspension("s1")) == []  # redelivered
    keep = accounts_pb2.AccountSuspended.KEEP_NUMBER
    assert r.feed(suspension("k", "2025-05-03T00:00:00", keep)) == []
    assert r.feed(resumed("r1")) == []
    assert ids(r.feed(suspension("s3", "2025-06-01T00:00:00"))) == ["C|COMMAND|RESTORE|s3"]


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


def test_a_birthday_charge_redelivered_however_late_counts_once():
    r = Run()
    r.feed(profile("A", 3, 15))
    day = [usage("A", f"u{i}", "2025-03-15T02:00:00", 10) for i in range(40)]  # local 10:00
    r.feed(*day)
    assert r.state("A")["bday"] == {"2025-03-15": 400}
    r.feed(*day)  # the whole day again, behind 40 newer records
    assert r.state("A")["bday"] == {"2025-03-15": 400}
    # Two later birthdays are kept; the first is dropped with its ids, and a record of it
    # redelivered after that changes nothing.
    r.feed(usage("A", "v", "2026-03-15T02:00:00", 7), usage("A", "w", "2027-03-15T02:00:00", 5))
    st = r.state("A")
    assert st["bday"] == {"2026-03-15": 7, "2027-03-15": 5}
    assert set(st["bday_ids"]) == {"2026-03-15", "2027-03-15"}
    r.feed(day[0])
    assert r.state("A")["bday"] == st["bday"] and r.state("A")["bday_ids"] == st["bday_ids"]


def test_a_birthday_charge_counts_the_same_whether_it_comes_before_or_after_the_profile():
    r = Run()
    # The usage ahead of the profile (and birthday): kept as if the day were the birthday.
    early = [usage("A", f"u{i}", "2025-03-15T02:00:00", 10) for i in range(3)]
    r.feed(*early)
    r.feed(profile("A", 3, 15, at="2025-03-15T02:30:00"), usage("A", "u3", "2025-03-15T03:00", 10))
    assert r.state("A")["bday"] == {"2025-03-15": 40}
    r.feed(*early)  # redelivered, now that the birthday is known
    assert r.state("A")["bday"] == {"2025-03-15": 40}


def test_decisions_grant_and_revoke_what_the_claims_left_and_claims_expire_once():
    r = Run()
    t0 = ts("2025-06-01T00:00:00")
    out = r.feed(decision("D", "t1", common_pb2.DIAMOND, t0))
    granted = {m.benefit_granted.code: m.benefit_granted.quantity for _, m in out}
    assert granted == {
        "AIRPORT_LOUNGE": 6,
        "HOTEL_DISCOUNT": 4,
        "INTL_ROAMING_PACK": 7,
        "STAR_DAY": 2,
    }
    assert r.feed(decision("D", "t1", common_pb2.DIAMOND, t0)) == []  # redelivered
    # One STAR_DAY claimed (the HTTP side's, read back from hvc.benefits.v1), twice over.
    slot = "D|CLAIM|STAR_DAY|2025|000"
    valid_to = t0 + 7 * 86400
    r.feed(*[claimed("D", slot, "STAR_DAY", common_pb2.DIAMOND, valid_to)] * 2)
    # Downgraded to SILVER: STAR_DAY's unclaimed rest revoked (2 - 1), the rest granted.
    out = r.feed(decision("D", "t2", common_pb2.SILVER, t0 + 3600))
    revoked = [m.benefit_revoked for _, m in out if m.HasField("benefit_revoked")]
    assert [(x.code, x.quantity, x.grant_id) for x in revoked] == [
        ("STAR_DAY", 1, "D|GRANT|STAR_DAY|2025|DIAMOND")
    ]
    assert {m.benefit_granted.code for _, m in out if m.HasField("benefit_granted")} == {
        "AIRPORT_LOUNGE",
        "HOTEL_DISCOUNT",
        "INTL_ROAMING_PACK",
    }
    # The tiers view the HTTP side judges claims by.
    tiers = [v for v in r.views if v.collection == "tiers"]
    assert tiers[-1].doc == {"timeline": {str(t0): "DIAMOND", str(t0 + 3600): "SILVER"}}
    # The claim's validity ends as event time passes it: BenefitExpired, once.
    assert r.feed(usage("D", "x", "2025-06-07T23:00:00", 0)) == []
    out = r.feed(usage("D", "y", "2025-06-08T00:02:00", 0))
    assert ids(out) == ["D|EXPIRE|STAR_DAY|2025|000"]
    assert out[0][1].benefit_expired.valid_to.ToSeconds() == valid_to
    r.feed(claimed("D", slot, "STAR_DAY", common_pb2.DIAMOND, valid_to))  # redelivered late
    assert r.feed(usage("D", "z", "2025-06-09T00:02:00", 0)) == []
    assert r.ledger()["D|EXPIRE|STAR_DAY|2025|000"]["claim_id"] == slot


def test_a_whole_feed_redelivered_sends_nothing_more():
    r = Run()
    midnight = ts("2025-03-14T16:00:00")
    feed = [
        profile("A", 3, 15),
        decision("A", "t1", common_pb2.GOLD, midnight - 86400 * 30),
        suspension("s1", cid="A"),
        usage("A", "u1", "2025-03-15T02:00:00", 10),
        usage("X", "x1", "2025-03-16T00:00:00", 0),
        claimed("A", "A|CLAIM|AIRPORT_LOUNGE|2025|000", "AIRPORT_LOUNGE", common_pb2.GOLD, None),
        decision("A", "t2", common_pb2.NONE, midnight + 86400 * 30),
    ]
    first = r.feed(*feed)
    assert len(first) > 8
    assert len(set(ids(first))) == len(first)
    assert r.feed(*feed) == []
