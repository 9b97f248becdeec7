"""SLA clocks without a broker or store (DOMAIN §4): pause and resume, the pause cap, a
business-hours calendar across a holiday, the policy pinned at filing, a tier change while
open, and reopening."""

from __future__ import annotations

import datetime as dt

import pytest

from hvc.complaints.domain.calendar import Calendar
from hvc.complaints.domain.lifecycle import InvalidTransition, check_transition, fold
from hvc.complaints.domain.policy import (
    DEFAULT_POLICIES,
    CalendarSpec,
    SlaPolicy,
    load_policies,
    policy_at,
)

UTC = dt.UTC
POLICIES = load_policies(DEFAULT_POLICIES)
P = POLICIES[0]
T0 = dt.datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # Monday 09:00 Shanghai


def mins(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def filed(tier="GOLD", channel="APP_WEB", policy: SlaPolicy = P, at=T0):
    return {
        "kind": "FILED",
        "seq": 0,
        "at": at,
        "complaint_id": "K1",
        "customer_id": "C1",
        "channel": channel,
        "category": "billing",
        "text": "t",
        "tier": tier,
        "policy_version": policy.version,
        "targets": policy.targets_for(tier, channel).model_dump(),
    }


def to(status, at, seq, **kw):
    return {"kind": "TRANSITION", "seq": seq, "at": at, "to": status, **kw}


def test_targets_by_tier_and_the_regulator_takes_the_stricter():
    assert P.targets_for("DIAMOND", "APP_WEB").first_response_minutes == 30
    miit = P.targets_for("NONE", "MIIT")
    assert (miit.first_response_minutes, miit.resolution_minutes) == (240, 1440)
    assert P.targets_for("DIAMOND", "MIIT").first_response_minutes == 30  # already stricter


def test_at_risk_at_80_percent_breach_at_100_and_escalation_every_further_50():
    c = fold([filed("GOLD")], POLICIES)  # first response 120 min, resolution 48 h
    assert c.sla(T0 + mins(95)) == ("ON_TRACK", 0)
    assert c.sla(T0 + mins(96)) == ("AT_RISK", 0)
    assert c.sla(T0 + mins(120)) == ("BREACHED", 1)
    assert c.sla(T0 + mins(179)) == ("BREACHED", 1)
    assert c.sla(T0 + mins(180)) == ("BREACHED", 2)
    assert c.sla(T0 + mins(240)) == ("BREACHED", 3)
    assert c.sla(T0 + mins(10_000)) == ("BREACHED", 3)  # director is the last level
    keys = [m.key for m in c.reached(T0 + mins(240))]
    assert keys == [
        "first_response:80",
        "first_response:100",
        "first_response:150",
        "first_response:200",
    ]


def test_acknowledging_stops_the_first_response_clock_for_good():
    c = fold([filed("GOLD"), to("ACKNOWLEDGED", T0 + mins(60), 1)], POLICIES)
    assert c.elapsed("first_response", T0 + mins(500)) == 3600
    assert c.sla(T0 + mins(500)) == ("ON_TRACK", 0)
    assert c.due_at("first_response", T0 + mins(500)) is None
    assert c.due_at("resolution", T0 + mins(500)) == T0 + dt.timedelta(hours=48)


def test_pause_and_resume_keep_the_time_already_counted():
    c = fold(
        [
            filed("GOLD"),
            to("ACKNOWLEDGED", T0 + mins(10), 1),
            to("PENDING_CUSTOMER", T0 + mins(60), 2),
            to("IN_PROGRESS", T0 + mins(300), 3),
        ],
        POLICIES,
    )
    assert c.elapsed("resolution", T0 + mins(300)) == 60 * 60
    assert c.elapsed("resolution", T0 + mins(360)) == 120 * 60
    # 48 h of resolution time, 4 h of it paused: due 4 h later than without the pause.
    assert c.due_at("resolution", T0 + mins(360)) == T0 + dt.timedelta(hours=52)


def test_a_pause_counts_only_up_to_the_cap():
    cap = P.pause_cap_minutes  # 72 h
    c = fold(
        [
            filed("GOLD"),
            to("ACKNOWLEDGED", T0 + mins(10), 1),
            to("PENDING_CUSTOMER", T0 + mins(60), 2),
        ],
        POLICIES,
    )
    during = T0 + mins(60 + cap - 1)
    assert c.elapsed("resolution", during) == 60 * 60
    after = T0 + mins(60 + cap + 30)
    assert c.elapsed("resolution", after) == 90 * 60  # running again from the cap
    # While paused, the due instant is projected from the cap's end.
    assert c.due_at("resolution", T0 + mins(120)) == T0 + mins(60 + cap) + dt.timedelta(hours=47)


def test_business_hours_across_a_holiday():
    spec = CalendarSpec(
        kind="business_hours",
        opens=dt.time(9),
        closes=dt.time(18),
        holidays=(dt.date(2025, 4, 4),),  # Qingming, a Friday
    )
    cal = Calendar(spec, P.zone)
    thursday_17 = dt.datetime(2025, 4, 3, 9, 0, tzinfo=UTC)  # 17:00 local
    # 2 working hours: 1 on Thursday, none on the holiday or the weekend, 1 on Monday.
    assert cal.add(thursday_17, 7200) == dt.datetime(2025, 4, 7, 2, 0, tzinfo=UTC)  # Mon 10:00
    assert cal.working_seconds(thursday_17, dt.datetime(2025, 4, 7, 2, 0, tzinfo=UTC)) == 7200
    policy = P.model_copy(update={"calendar": spec})
    c = fold([filed("GOLD", policy=policy, at=thursday_17)], [policy])
    assert c.due_at("first_response", thursday_17) == dt.datetime(2025, 4, 7, 2, 0, tzinfo=UTC)


def test_office_hour_channels_follow_the_working_calendar_across_national_day():
    """The shipped 2027.1 policy (DOMAIN §6): the mayor's mailbox counts working hours on the
    operator's calendar (the 2026 notice: 1-7 October off, Saturday 10 October worked); the
    hotline stays 24x7. Pinned here on a 2026 filing to use a year with a published notice."""
    office = next(p for p in POLICIES if p.version == "2027.1")
    assert office.effective_from == dt.date(2027, 1, 1)
    assert policy_at(POLICIES, dt.date(2026, 12, 31)).version == "2025.1"
    wed_17 = dt.datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # Wednesday 17:00 local
    mailbox = fold([filed("DIAMOND", "MAYORS_MAILBOX", office, wed_17)], [office])
    # 24 working hours: 1 on 30 September, none 1-7 October, 9 on Thursday 8 and Friday 9,
    # the last 5 on Saturday 10 October (an adjusted working day): due 14:00 local.
    assert mailbox.due_at("resolution", wed_17) == dt.datetime(2026, 10, 10, 6, 0, tzinfo=UTC)
    assert mailbox.due_at("first_response", wed_17) == wed_17 + mins(30)
    assert mailbox.elapsed("resolution", dt.datetime(2026, 10, 7, 12, 0, tzinfo=UTC)) == 3600
    hotline = fold([filed("DIAMOND", "HOTLINE_10086", office, wed_17)], [office])
    assert hotline.due_at("resolution", wed_17) == wed_17 + dt.timedelta(hours=24)
    # Without the working calendar the same channel would count 1 October as a working day.
    plain = office.channel_calendars["MAYORS_MAILBOX"].model_copy(
        update={"holidays": (), "workdays": ()}
    )
    bare = office.model_copy(update={"channel_calendars": {"MAYORS_MAILBOX": plain}})
    c = fold([filed("DIAMOND", "MAYORS_MAILBOX", bare, wed_17)], [bare])
    # (1 + 9 + 9 hours to Friday 2 October, 5 on Monday 5 October: 14:00 local)
    assert c.due_at("resolution", wed_17) == dt.datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def test_the_policy_is_pinned_at_filing():
    newer = P.model_copy(
        update={
            "version": "2026.1",
            "effective_from": dt.date(2026, 1, 1),
            "targets": {**P.targets, "GOLD": P.targets["DIAMOND"]},
        }
    )
    both = [P, newer]
    assert policy_at(both, dt.date(2025, 12, 31)) is P
    assert policy_at(both, dt.date(2026, 1, 1)) is newer
    c = fold([filed("GOLD", policy=P)], both)
    assert c.policy.version == "2025.1" and c.targets.first_response_minutes == 120


def test_a_tier_change_while_open_applies_the_stricter_targets_only():
    up = {
        "kind": "TIER_CHANGED",
        "seq": 1,
        "at": T0 + mins(10),
        "tier": "DIAMOND",
        "targets": P.targets_for("DIAMOND", "APP_WEB").model_dump(),
    }
    c = fold([filed("GOLD"), up], POLICIES)
    assert c.targets.first_response_minutes == 30
    assert c.sla(T0 + mins(30)) == ("BREACHED", 1)  # the 10 minutes already counted stay
    down = {
        **up,
        "seq": 2,
        "tier": "NONE",
        "targets": P.targets_for("NONE", "APP_WEB").model_dump(),
    }
    c = fold([filed("GOLD"), up, down], POLICIES)
    assert c.targets.first_response_minutes == 30  # never looser while open


def test_reopen_measures_first_and_final_resolution_separately():
    c = fold(
        [
            filed("GOLD"),
            to("ACKNOWLEDGED", T0 + mins(10), 1),
            to("RESOLVED", T0 + mins(100), 2),
            to("CALLBACK_DONE", T0 + mins(200), 3, satisfaction=2),
            to("REOPENED", T0 + mins(1000), 4),
            to("RESOLVED", T0 + mins(1060), 5),
        ],
        POLICIES,
    )
    assert c.first_resolution_s() == 100 * 60
    assert c.final_resolution_s() == 160 * 60  # resolved time does not count
    assert c.satisfaction == 2


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        ("RECEIVED", "ACKNOWLEDGED", True),
        ("RECEIVED", "CLOSED", False),
        ("RESOLVED", "REOPENED", True),
        ("CLOSED", "REOPENED", True),
        ("CLOSED", "IN_PROGRESS", False),
        ("IN_PROGRESS", "CALLBACK_DONE", False),
        ("RESOLVED", "CALLBACK_DONE", True),
    ],
)
def test_transitions_are_enforced(current, target, ok):
    if ok:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_a_filings_category_is_counted_in_the_taxonomy():
    policy = POLICIES[0]
    assert policy.category("network") == policy.category("NETWORK") == "NETWORK"
    assert policy.category(" value-added ") == "VALUE_ADDED"
    assert policy.category("general") == "OTHER"  # an alias
    assert policy.category("vas") == "VALUE_ADDED"
    assert policy.category("weather") == "OTHER"  # not in the taxonomy
    assert policy.category("") == "OTHER"
    with pytest.raises(ValueError, match="outside the taxonomy"):
        policy.model_validate({**policy.model_dump(), "category_aliases": {"X": "NOPE"}})
    with pytest.raises(ValueError, match="needs OTHER"):
        policy.model_validate({**policy.model_dump(), "categories": ["NETWORK"]})
