"""A group's file and the group customer department's indicators (hvc.tiering.domain.groups)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from hvc.tiering.domain.groups import group_file, indicators, period_bounds
from hvc.tiering.domain.model import GroupSnapshot
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook

RULES = load_rulebook([DEFAULT_RULESETS]).at(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC


def snap(gid, handsets, sector="retail", name="Acme", at="2026-01-01", eid=None):
    when = dt.datetime.fromisoformat(at).replace(tzinfo=UTC)
    return GroupSnapshot(eid or f"{gid}-{at}", when, gid, name, sector, handsets, 0)


def doc(gid, members=0, keys=(), managers=(), key_managers=()):
    return {
        "_id": gid,
        "members": members,
        "key_persons": list(keys),
        "key_person_count": len(keys),
        "managers": [{"id": m, "members": n} for m, n in managers],
        "key_person_managers": [{"id": m, "members": n} for m, n in key_managers],
    }


def test_a_file_is_complete_with_every_required_item_and_names_what_it_lacks():
    full = group_file(
        doc("G1", 3, ["K1"], [("M2", 2), ("M1", 1)], [("M1", 1)]), [snap("G1", 40)], RULES
    )
    assert full.complete and full.manager_id == "M1"  # the key persons' manager first
    assert (full.group_class, full.handsets, full.members) == ("C", 40, 3)
    bare = group_file(doc("G2", 2, [], [("M2", 1), ("M1", 1)]), [], RULES)
    assert bare.group_class is None and bare.manager_id == "M1"  # a tie: the lowest id
    assert bare.missing == ("name", "sector", "handsets", "key_person")
    newest = group_file(
        doc("G3"),
        [snap("G3", 600, at="2026-03-01"), snap("G3", 20, sector="", at="2026-01-01")],
        RULES,
    )
    assert (newest.group_class, newest.missing) == ("A", ("key_person", "manager"))


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026-11", "2026-10-31T16:00:00", "2026-11-30T16:00:00"),
        ("2026-Q4", "2026-09-30T16:00:00", "2026-12-31T16:00:00"),
        ("2026", "2025-12-31T16:00:00", "2026-12-31T16:00:00"),
    ],
)
def test_a_period_is_bounded_in_the_operators_zone(period, start, end):
    got = period_bounds(period, SHANGHAI)
    assert got == tuple(dt.datetime.fromisoformat(x).replace(tzinfo=UTC) for x in (start, end))


def test_a_malformed_period_is_refused():
    with pytest.raises(ValueError, match="period"):
        period_bounds("2026-13", SHANGHAI)


def stint(start, end):
    def t(s):
        return None if s is None else dt.datetime.fromisoformat(s).replace(tzinfo=UTC)

    return {"from": t(start), "to": t(end)}


def test_indicators_count_files_coverage_stability_and_staffing_against_their_targets():
    files = [
        group_file(doc("A1", 300, ["K"], [("M1", 300)]), [snap("A1", 600)], RULES),
        group_file(doc("C1", 10, [], [("M1", 10)]), [snap("C1", 40)], RULES),
        group_file(doc("C2", 5, ["K2"], [("M2", 5)]), [snap("C2", 20)], RULES),
    ]
    start, end = period_bounds("2026-Q2", SHANGHAI)
    members = [
        # in the group all quarter: kept
        {"group_id": "A1", "stints": [stint(None, None)]},
        # left in May: not kept
        {"group_id": "A1", "stints": [stint("2025-01-01T00:00:00", "2026-05-10T00:00:00")]},
        # joined in May: not at the start, not counted
        {"group_id": "C1", "stints": [stint("2026-05-01T00:00:00", None)]},
        # left in April, back in June: kept
        {
            "group_id": "C2",
            "stints": [
                stint("2025-01-01T00:00:00", "2026-04-10T00:00:00"),
                stint("2026-06-01T00:00:00", None),
            ],
        },
    ]
    got = indicators(files, members, RULES, start, end)
    filing = got["filing_rate"]
    assert filing["by_class"]["A"] == {
        "groups": 1,
        "complete": 1,
        "rate": 1.0,
        "target": 0.95,
        "met": True,
    }
    assert filing["by_class"]["C"]["rate"] == 0.5 and filing["by_class"]["C"]["met"] is False
    assert filing["by_class"]["B"]["rate"] is None and filing["by_class"]["B"]["met"] is None
    assert (filing["groups"], filing["complete"]) == (3, 2)
    coverage = got["member_coverage"]
    assert (coverage["members"], coverage["handsets"], coverage["rate"]) == (315, 660, 0.4773)
    assert coverage["met"] is True  # 47.7% >= 27%
    stability = got["stability"]
    assert (stability["at_start"], stability["kept"], stability["rate"]) == (3, 2, 0.6667)
    assert stability["met"] is False  # 66.7% < 70%
    assert got["staffing"] == {
        "groups_per_manager": 50,
        "managers": 2,
        "managers_needed": 1,
        "over_ratio": {},
        "without_manager": 0,
    }
