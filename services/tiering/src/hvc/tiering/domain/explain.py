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
                "params": dict(c.params),
            }
            for c in comps
        ],
        "annual": None,
        "reasons": [],
        # The same reasons as codes with their values, for a display in any language.
        "reason_codes": [],
    }
    annual = max(facts.annual.values(), key=lambda a: a.year, default=None)
    reasons: list[str] = out["reasons"]
    codes: list[dict[str, Any]] = out["reason_codes"]

    def why(code: str, text: str, first: bool = False, **values: Any) -> None:
        at = 0 if first else len(reasons)
        reasons.insert(at, text)
        codes.insert(at, {"code": code, **{k: str(v) for k, v in values.items()}})

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
            vip = rules.threshold(Tier.VIP)
            why(
                "BELOW_VIP",
                f"annual {annual.year}: score {annual.score} is below the VIP threshold "
                f"{vip} ({vip - annual.score} points short)",
                year=annual.year,
                score=annual.score,
                threshold=vip,
                short=vip - annual.score,
            )
    else:
        rules = book.at(at)
        joined = facts.joined_on
        if joined is None:
            why("NO_JOIN_DATE", "no annual result: the customer's join date is not known")
        else:
            years = tenure_years(joined, local_date(at, rules), rules)
            if years < rules.min_tenure_years:
                why(
                    "TENURE_TOO_SHORT",
                    f"not assessed: tenure {years} year(s), "
                    f"assessment needs {rules.min_tenure_years}",
                    years=years,
                    needed=rules.min_tenure_years,
                )
            else:
                why("NO_ANNUAL_RUN", "no annual evaluation has been run for this customer yet")
    if top is not None:
        why(
            "FROM_SOURCE",
            f"{tier.name} from {top.source.value}: {top.detail}",
            first=True,
            tier=tier.name,
            source=top.source.value,
            detail=top.detail,
            **dict(top.params),
        )
        return out
    # No tier at all: say what ended.
    ended_plans = [p for p in facts.plans if p.effective_to is not None and p.effective_to <= at]
    active = [c for c in comps if c.source is Source.PLAN]
    if active:
        why(
            "NOT_GOTONE_PLAN",
            f"current plan is not a GoTone plan ({active[0].detail})",
            detail=active[0].detail,
        )
    elif ended_plans:
        last = max(ended_plans, key=lambda p: p.effective_to or at)
        why(
            "PLAN_ENDED",
            f"GoTone plan {last.plan_id} ended at {last.effective_to}",
            plan_id=last.plan_id,
            at=last.effective_to.isoformat() if last.effective_to else "",
        )
    else:
        why("NO_GOTONE_PLAN", "no GoTone plan")
    expired = [o for o in facts.overrides if o.expires_at <= at]
    if expired:
        last_o = max(expired, key=lambda o: o.expires_at)
        why(
            "OVERRIDE_EXPIRED",
            f"manual floor {last_o.tier.name} expired at {last_o.expires_at}",
            tier=last_o.tier.name,
            at=last_o.expires_at.isoformat(),
        )
    return out
