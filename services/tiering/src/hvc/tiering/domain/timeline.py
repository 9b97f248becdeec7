"""The effective tier over time, and the decisions still owed to the topic.

Effective tier at t = max(annual, plan, manual floor, key-person tier) at t. The timeline is
computed from the stored facts alone, so it is the same whatever order events arrived in.
Decisions are its change points; an emitted change point that a late fact has moved is
re-emitted with the corrected tier, so a consumer that keeps "the latest decision per
effective instant" always reads the true tier at any t.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hvc.tiering.domain.model import Component, CustomerFacts, GroupSnapshot
from hvc.tiering.domain.rules import GroupClassRules, RuleBook
from hvc.tiering.domain.scoring import plan_tier
from hvc.tiering.domain.tiers import SOURCE_PRIORITY, Source, Tier

FAR_PAST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def group_class(g: GroupSnapshot, rules: GroupClassRules) -> str:
    sector = g.sector.strip().lower()
    if (
        g.handsets >= rules.a_min_handsets
        or sector in rules.a_sectors
        or g.monthly_spend_fen >= rules.a_min_monthly_spend_fen
    ):
        return "A"
    if g.handsets >= rules.b_min_handsets or sector in rules.b_sectors:
        return "B"
    return "C"


def _latest_at(items: Sequence[Any], t: dt.datetime, when: str) -> Any:
    """The item with the latest `when` not after t; ties go to the later event."""
    best = None
    for it in items:
        if getattr(it, when) <= t and (
            best is None
            or (getattr(it, when), it.at, it.event_id)
            > (getattr(best, when), best.at, best.event_id)
        ):
            best = it
    return best


def components_at(
    facts: CustomerFacts,
    groups: Mapping[str, list[GroupSnapshot]],
    book: RuleBook,
    t: dt.datetime,
) -> list[Component]:
    out: list[Component] = []
    # Annual: the latest result already valid; it holds until the next year's replaces it.
    annual = [a for a in facts.annual.values() if a.valid_from <= t]
    if annual:
        a = max(annual, key=lambda r: r.valid_from)
        out.append(
            Component(
                a.tier,
                Source.ANNUAL,
                a.ruleset_version,
                f"annual {a.year}: score {a.score}",
                (("year", str(a.year)), ("score", str(a.score))),
            )
        )
    # Plan: the latest plan version in effect; ties on effective_from go to the later event.
    plan = _latest_at(facts.plans, t, "effective_from")
    if plan is not None and (plan.effective_to is None or t < plan.effective_to):
        rules = book.at(plan.effective_from)
        tier = plan_tier(plan.monthly_fee_fen, plan.gotone, rules)
        out.append(
            Component(
                tier,
                Source.PLAN,
                rules.version,
                f"plan {plan.plan_id} at {plan.monthly_fee_fen} fen/month",
                (("plan_id", plan.plan_id), ("fee_fen", str(plan.monthly_fee_fen))),
            )
        )
    # Manual floor: the latest override set, until it expires.
    set_before = [o for o in facts.overrides if o.set_at <= t]
    if set_before:
        o = max(set_before, key=lambda o: (o.set_at, o.override_id))
        if t < o.expires_at:
            out.append(
                Component(
                    o.tier,
                    Source.MANUAL,
                    book.at(o.set_at).version,
                    f"manual floor by {o.by}: {o.reason}",
                    (("by", o.by), ("reason", o.reason)),
                )
            )
    # Key person of a group: the tier of the group's class at t.
    profile = _latest_at(facts.profiles, t, "at")
    if profile is not None and profile.is_key_person and profile.group_id:
        snap = _latest_at(groups.get(profile.group_id, []), t, "at")
        if snap is not None:
            rules = book.at(t)
            cls = group_class(snap, rules.groups)
            tier = rules.groups.key_person_tiers[cls]  # type: ignore[index]
            out.append(
                Component(
                    tier,
                    Source.GROUP_KEY_PERSON,
                    rules.version,
                    f"key person of group {snap.group_id} (class {cls})",
                    (("group_id", snap.group_id), ("group_class", cls)),
                )
            )
    return out


def best(components: list[Component]) -> Component | None:
    ranked = sorted(components, key=lambda c: (-c.tier, SOURCE_PRIORITY.index(c.source)))
    return ranked[0] if ranked and ranked[0].tier > Tier.NONE else None


def breakpoints(
    facts: CustomerFacts, groups: Mapping[str, list[GroupSnapshot]], book: RuleBook
) -> list[dt.datetime]:
    points: set[dt.datetime] = set()
    points.update(a.valid_from for a in facts.annual.values())
    for p in facts.plans:
        points.add(p.effective_from)
        if p.effective_to is not None:
            points.add(p.effective_to)
    for o in facts.overrides:
        points.update((o.set_at, o.expires_at))
    points.update(p.at for p in facts.profiles)
    for gid in {p.group_id for p in facts.profiles if p.group_id}:
        points.update(g.at for g in groups.get(gid, []))
    for r in book.rulesets:
        points.add(dt.datetime.combine(r.effective_from, dt.time(), r.zone).astimezone(dt.UTC))
    return sorted(points)


@dataclass(frozen=True)
class ChangePoint:
    at: dt.datetime
    old_tier: Tier
    new_tier: Tier
    source: Source
    ruleset_version: str
    detail: str


def timeline(
    facts: CustomerFacts, groups: Mapping[str, list[GroupSnapshot]], book: RuleBook
) -> list[ChangePoint]:
    """Every instant at which the effective tier changes, in order."""
    out: list[ChangePoint] = []
    current, last = Tier.NONE, None
    for t in breakpoints(facts, groups, book):
        c = best(components_at(facts, groups, book, t))
        tier = c.tier if c else Tier.NONE
        if tier != current:
            # A fall to NONE is explained by the source that ended.
            why = c or last
            assert why is not None
            out.append(
                ChangePoint(
                    t,
                    current,
                    tier,
                    why.source,
                    why.ruleset_version,
                    why.detail if c else f"{why.detail} ended",
                )
            )
            current = tier
        if c is not None:
            last = c
    return out


def tier_at(points: list[ChangePoint], t: dt.datetime) -> Tier:
    tier = Tier.NONE
    for p in points:
        if p.at > t:
            break
        tier = p.new_tier
    return tier


@dataclass(frozen=True)
class Emitted:
    tier: Tier
    count: int  # how many decisions were emitted for this instant


@dataclass(frozen=True)
class Decision:
    event_id: str
    customer_id: str
    point: ChangePoint
    seq: int  # the count of decisions for this instant, this one included


def instant_key(t: dt.datetime) -> str:
    """A MongoDB-safe key for an instant (no dots): epoch seconds."""
    return str(int(t.timestamp()))


def decisions_owed(
    customer_id: str, points: list[ChangePoint], emitted: Mapping[str, Emitted]
) -> list[Decision]:
    """Decisions to publish so that the emitted history agrees with the timeline."""
    by_key = {instant_key(p.at): p for p in points}
    owed: list[ChangePoint] = [
        p for k, p in by_key.items() if k not in emitted or emitted[k].tier != p.new_tier
    ]
    for k, e in emitted.items():
        if k in by_key:
            continue
        at = dt.datetime.fromtimestamp(int(k), dt.UTC)
        truth = tier_at(points, at)
        if truth != e.tier:
            # The change emitted for this instant no longer happens: correct it in place.
            before = tier_at(points, at - dt.timedelta(microseconds=1))
            prev = [p for p in points if p.at <= at]
            src = prev[-1] if prev else None
            owed.append(
                ChangePoint(
                    at,
                    before,
                    truth,
                    src.source if src else Source.ANNUAL,
                    src.ruleset_version if src else "",
                    "correction: a later fact moved this change",
                )
            )
    out = []
    for p in sorted(owed, key=lambda p: p.at):
        k = instant_key(p.at)
        seq = (emitted[k].count if k in emitted else 0) + 1
        digest = hashlib.sha256(f"{customer_id}|{k}|{seq}|{p.new_tier.name}".encode())
        out.append(Decision(f"tier-{digest.hexdigest()[:32]}", customer_id, p, seq))
    return out
