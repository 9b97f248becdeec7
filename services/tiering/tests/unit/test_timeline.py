"""The effective-tier timeline and the decisions owed: plan, manual floor, key person,
redelivery and out-of-order arrival."""

from __future__ import annotations

import datetime as dt
import itertools
import random

from hvc.tiering.domain.model import (
    AnnualResult,
    CustomerFacts,
    GroupSnapshot,
    Override,
    PlanVersion,
    Profile,
)
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.domain.tiers import Source, Tier
from hvc.tiering.domain.timeline import (
    Emitted,
    decisions_owed,
    group_class,
    instant_key,
    tier_at,
    timeline,
)

BOOK = load_rulebook([DEFAULT_RULESETS])
RULES = BOOK.rulesets[0]
UTC = dt.UTC


def at(day: int, hour: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, tzinfo=UTC)


def plan(eid: str, fee: int, start: dt.datetime, end: dt.datetime | None = None, *, gotone=True):
    return PlanVersion(eid, f"P{fee}", fee, gotone, start, end, start)


def apply(emitted: dict[str, Emitted], decisions) -> None:
    for d in decisions:
        emitted[instant_key(d.point.at)] = Emitted(d.point.new_tier, d.seq)


def test_plan_raised_and_lowered_on_the_same_day():
    f = CustomerFacts(
        "c",
        plans=[
            plan("e1", 18_800, at(10, 1)),  # SILVER at 01:00
            plan("e2", 58_800, at(10, 9)),  # raised to DIAMOND at 09:00
            plan("e3", 28_800, at(10, 17)),  # lowered to GOLD at 17:00
        ],
    )
    points = timeline(f, {}, BOOK)
    assert [(p.at, p.old_tier, p.new_tier, p.source) for p in points] == [
        (at(10, 1), Tier.NONE, Tier.SILVER, Source.PLAN),
        (at(10, 9), Tier.SILVER, Tier.DIAMOND, Source.PLAN),
        (at(10, 17), Tier.DIAMOND, Tier.GOLD, Source.PLAN),
    ]
    assert tier_at(points, at(10, 12)) is Tier.DIAMOND
    assert all(p.ruleset_version == "2025.1" for p in points)


def test_ending_a_plan_removes_the_plan_tier():
    f = CustomerFacts("c", plans=[plan("e1", 38_800, at(1), at(20))])
    points = timeline(f, {}, BOOK)
    assert [(p.at, p.new_tier) for p in points] == [(at(1), Tier.PLATINUM), (at(20), Tier.NONE)]
    assert points[-1].source is Source.PLAN


def test_a_cancellation_with_the_same_effective_from_wins_by_arrival():
    f = CustomerFacts(
        "c",
        plans=[
            plan("e1", 38_800, at(1)),
            PlanVersion("e2", "P38800", 38_800, True, at(1), at(5), at(4)),  # ended later
        ],
    )
    assert tier_at(timeline(f, {}, BOOK), at(6)) is Tier.NONE


def test_effective_tier_is_the_higher_of_annual_and_plan():
    annual = AnnualResult(
        2024, dt.date(2025, 1, 1), "2025.1", 1500, 100, 5, 1600, Tier.GOLD, at(1, month=2)
    )
    f = CustomerFacts("c", annual={"2024": annual}, plans=[plan("e1", 18_800, at(1))])
    points = timeline(f, {}, BOOK)
    assert tier_at(points, at(15)) is Tier.GOLD
    assert points[-1].source is Source.ANNUAL


def test_manual_floor_acts_while_it_lasts_and_expires():
    f = CustomerFacts(
        "c",
        plans=[plan("e1", 18_800, at(1))],
        overrides=[Override("o1", Tier.PLATINUM, at(5), at(25), "complaint goodwill", "sup1")],
    )
    points = timeline(f, {}, BOOK)
    assert [(p.at, p.new_tier, p.source) for p in points] == [
        (at(1), Tier.SILVER, Source.PLAN),
        (at(5), Tier.PLATINUM, Source.MANUAL),
        (at(25), Tier.SILVER, Source.PLAN),
    ]


def test_manual_floor_below_the_tier_changes_nothing():
    f = CustomerFacts(
        "c",
        plans=[plan("e1", 58_800, at(1))],
        overrides=[Override("o1", Tier.GOLD, at(5), at(25), "r", "sup1")],
    )
    assert [p.new_tier for p in timeline(f, {}, BOOK)] == [Tier.DIAMOND]


def test_key_person_gets_the_tier_of_the_group_class_regardless_of_spend():
    gov = GroupSnapshot("g1", at(1), "G1", "City Hall", "government", 40, 0)
    f = CustomerFacts("c", profiles=[Profile("p1", at(3), dt.date(2024, 1, 1), "G1", True)])
    points = timeline(f, {"G1": [gov]}, BOOK)
    assert [(p.at, p.new_tier, p.source) for p in points] == [
        (at(3), Tier.PLATINUM, Source.GROUP_KEY_PERSON)
    ]
    # No longer a key person: the tier goes with it.
    f.profiles.append(Profile("p2", at(9), dt.date(2024, 1, 1), "G1", False))
    assert tier_at(timeline(f, {"G1": [gov]}, BOOK), at(10)) is Tier.NONE


def test_group_classes():
    def g(handsets, sector="retail", spend=0):
        return GroupSnapshot("e", at(1), "G", "n", sector, handsets, spend)

    assert group_class(g(500), RULES.groups) == "A"
    assert group_class(g(499), RULES.groups) == "B"
    assert group_class(g(20, "Banking"), RULES.groups) == "A"
    assert group_class(g(20, "insurance"), RULES.groups) == "B"
    assert group_class(g(100), RULES.groups) == "B"
    assert group_class(g(99), RULES.groups) == "C"
    assert group_class(g(5, spend=50_000_000), RULES.groups) == "A"


def test_decisions_are_owed_once_and_redelivery_owes_nothing():
    f = CustomerFacts("c", plans=[plan("e1", 18_800, at(1)), plan("e2", 58_800, at(10))])
    emitted: dict[str, Emitted] = {}
    first = decisions_owed("c", timeline(f, {}, BOOK), emitted)
    assert [d.point.new_tier for d in first] == [Tier.SILVER, Tier.DIAMOND]
    # Computing again before the emission was recorded gives the same ids (safe to resend).
    assert [d.event_id for d in decisions_owed("c", timeline(f, {}, BOOK), emitted)] == [
        d.event_id for d in first
    ]
    apply(emitted, first)
    assert decisions_owed("c", timeline(f, {}, BOOK), emitted) == []


def test_a_late_fact_corrects_an_emitted_change_in_place():
    f = CustomerFacts("c", plans=[plan("e1", 18_800, at(1)), plan("e2", 58_800, at(10))])
    emitted: dict[str, Emitted] = {}
    apply(emitted, decisions_owed("c", timeline(f, {}, BOOK), emitted))
    # A late cancellation: the raise on the 10th never took effect.
    f.plans.append(PlanVersion("e3", "P58800", 58_800, True, at(10), at(10), at(12)))
    f.plans.append(PlanVersion("e4", "P18800", 18_800, True, at(10), None, at(12)))
    owed = decisions_owed("c", timeline(f, {}, BOOK), emitted)
    assert [(d.point.at, d.point.new_tier, d.seq) for d in owed] == [(at(10), Tier.SILVER, 2)]
    apply(emitted, owed)
    assert decisions_owed("c", timeline(f, {}, BOOK), emitted) == []


def test_out_of_order_arrival_gives_the_same_tiers_at_every_instant():
    events = [
        plan("e1", 18_800, at(1)),
        plan("e2", 58_800, at(5)),
        plan("e3", 28_800, at(9), at(20)),
        plan("e4", 38_800, at(15)),
    ]
    probes = [at(d) for d in range(1, 28)]
    reference = None
    rng = random.Random(7)
    orders = list(itertools.permutations(events))
    for order in rng.sample(orders, 12):
        f = CustomerFacts("c")
        emitted: dict[str, Emitted] = {}
        for e in order:
            f.plans.append(e)
            apply(emitted, decisions_owed("c", timeline(f, {}, BOOK), emitted))
        # What a consumer sees: the latest decision per instant.
        seen = sorted((int(k), v.tier) for k, v in emitted.items())
        consumer = []
        for p in probes:
            before = [t for s, t in seen if s <= p.timestamp()]
            consumer.append(before[-1] if before else Tier.NONE)
        truth = [tier_at(timeline(f, {}, BOOK), p) for p in probes]
        assert consumer == truth
        reference = reference or truth
        assert truth == reference
