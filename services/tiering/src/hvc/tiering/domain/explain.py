"""Why a customer holds the tier they hold (or no longer holds one): derived from facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hvc.tiering.domain.model import CustomerFacts, GroupSnapshot
from hvc.tiering.domain.rules import ASSESSED_TIERS, RuleBook
from hvc.tiering.domain.scoring import local_date, tenure_years
from hvc.tiering.domain.tiers import Source, Tier
from hvc.tiering.domain.timeline import best, components_at


def explain(
    facts: CustomerFacts,
    groups: Mapping[str, list[GroupSnapshot]],
    book: RuleBook,
    at: dt.datetime,
) -> dict[str, Any]:
    comps = components_at(facts, groups, book, at)
    top = best(comps)
    tier = top.tier if top else Tier.NONE
    out: dict[str, Any] = {
        "customer_id": facts.customer_id,
        "at": at.isoformat(),
        "effective_tier": tier.name,
        "source": top.source.value if top else None,
        "ruleset_version": top.ruleset_version if top else book.at(at).version,
        "components": [
            {
                "source": c.source.value,
                "tier": c.tier.name,
                "ruleset_version": c.ruleset_version,
                "detail": c.detail,
            }
            for c in comps
        ],
        "annual": None,
        "reasons": [],
    }
    annual = max(facts.annual.values(), key=lambda a: a.year, default=None)
    reasons: list[str] = out["reasons"]
    if annual is not None:
        rules = book.by_version.get(annual.ruleset_version, book.at(annual.valid_from))
        nxt = annual.tier.above()
        missing = rules.threshold(nxt) - annual.score if nxt is not None else 0
        out["annual"] = {
            "year": annual.year,
            "as_of": annual.as_of.isoformat(),
            "consumption_points": annual.consumption_points,
            "tenure_points": annual.tenure_points,
            "tenure_years": annual.tenure_years,
            "score": annual.score,
            "tier": annual.tier.name,
            "valid_from": annual.valid_from.isoformat(),
            "ruleset_version": annual.ruleset_version,
            "thresholds": {t.name: rules.threshold(t) for t in ASSESSED_TIERS},
            "next_tier": nxt.name if nxt else None,
            "points_to_next_tier": max(missing, 0),
        }
        if annual.tier is Tier.NONE:
            reasons.append(
                f"annual {annual.year}: score {annual.score} is below the VIP threshold "
                f"{rules.threshold(Tier.VIP)} ({rules.threshold(Tier.VIP) - annual.score} "
                "points short)"
            )
    else:
        rules = book.at(at)
        joined = facts.joined_on
        if joined is None:
            reasons.append("no annual result: the customer's join date is not known")
        else:
            years = tenure_years(joined, local_date(at, rules), rules)
            if years < rules.min_tenure_years:
                reasons.append(
                    f"not assessed: tenure {years} year(s), "
                    f"assessment needs {rules.min_tenure_years}"
                )
            else:
                reasons.append("no annual evaluation has been run for this customer yet")
    if top is not None:
        reasons.insert(0, f"{tier.name} from {top.source.value}: {top.detail}")
        return out
    # No tier at all: say what ended.
    ended_plans = [p for p in facts.plans if p.effective_to is not None and p.effective_to <= at]
    active = [c for c in comps if c.source is Source.PLAN]
    if active:
        reasons.append(f"current plan is not a GoTone plan ({active[0].detail})")
    elif ended_plans:
        last = max(ended_plans, key=lambda p: p.effective_to or at)
        reasons.append(f"GoTone plan {last.plan_id} ended at {last.effective_to}")
    else:
        reasons.append("no GoTone plan")
    expired = [o for o in facts.overrides if o.expires_at <= at]
    if expired:
        last_o = max(expired, key=lambda o: o.expires_at)
        reasons.append(f"manual floor {last_o.tier.name} expired at {last_o.expires_at}")
    return out
