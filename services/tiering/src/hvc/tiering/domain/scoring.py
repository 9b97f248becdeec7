"""Annual evaluation (DOMAIN §1.1) and the plan-fee mapping (§1.2): pure functions."""

from __future__ import annotations

import datetime as dt

from hvc.tiering.domain.model import AnnualResult, CustomerFacts
from hvc.tiering.domain.rules import ASSESSED_TIERS, RuleSet
from hvc.tiering.domain.tiers import Tier


def anniversary(joined_on: dt.date, year: int, rules: RuleSet) -> dt.date:
    """The join date's anniversary in `year`; 29 February per the rule set in other years."""
    try:
        return joined_on.replace(year=year)
    except ValueError:  # 29 February in a common year
        if rules.leap_day_anniversary == "MAR_1":
            return dt.date(year, 3, 1)
        return dt.date(year, 2, 28)


def tenure_years(joined_on: dt.date, as_of: dt.date, rules: RuleSet) -> int:
    """Whole years of tenure on the local calendar day `as_of`."""
    if as_of < joined_on:
        return 0
    years = as_of.year - joined_on.year
    if as_of < anniversary(joined_on, as_of.year, rules):
        years -= 1
    return max(years, 0)


def tenure_points(years: int, rules: RuleSet) -> int:
    for step in rules.tenure_points:  # validated: descending by min_years
        if years >= step.min_years:
            return step.points
    return 0


def consumption_points(facts: CustomerFacts, year: int) -> int:
    """1 point per whole yuan of countable spend billed for that year's periods."""
    prefix = f"{year:04d}-"
    fen = sum(b.countable_fen for b in facts.bills.values() if b.period.startswith(prefix))
    return fen // 100


def tier_for_score(score: int, rules: RuleSet) -> Tier:
    for tier in ASSESSED_TIERS:
        if score >= rules.threshold(tier):
            return tier
    return Tier.NONE


def plan_tier(monthly_fee_fen: int, gotone: bool, rules: RuleSet) -> Tier:
    if not gotone:
        return Tier.NONE
    for step in rules.plan_tiers:  # validated: descending, ends with 0
        if monthly_fee_fen >= step.min_monthly_fee_fen:
            return step.tier
    return Tier.NONE


def annual_valid_from(year: int, rules: RuleSet) -> dt.datetime:
    """Local midnight of the validity start in the year after the evaluated one, as UTC."""
    local = dt.datetime(
        year + 1, rules.annual_valid_from_month, rules.annual_valid_from_day, tzinfo=rules.zone
    )
    return local.astimezone(dt.UTC)


def evaluate_annual(
    facts: CustomerFacts, year: int, as_of: dt.date, rules: RuleSet
) -> AnnualResult | None:
    """The year's score and tier, or None when the customer is not assessed (tenure < 1 y)."""
    joined = facts.joined_on
    if joined is None:
        return None
    years = tenure_years(joined, as_of, rules)
    if years < rules.min_tenure_years:
        return None
    cp = consumption_points(facts, year)
    tp = tenure_points(years, rules)
    score = cp + tp
    return AnnualResult(
        year=year,
        as_of=as_of,
        ruleset_version=rules.version,
        consumption_points=cp,
        tenure_points=tp,
        tenure_years=years,
        score=score,
        tier=tier_for_score(score, rules),
        valid_from=annual_valid_from(year, rules),
    )


def local_date(instant: dt.datetime, rules: RuleSet) -> dt.date:
    """The operator's calendar day of an instant."""
    return instant.astimezone(rules.zone).date()
