"""Read-only scans over the customers: segmentation reports and rule-set dry runs.

Nothing here writes or publishes; a dry run evaluates a candidate rule set against the stored
facts and counts who would move from which tier to which.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from hvc.common import monthly
from hvc.tiering.domain.model import CustomerFacts
from hvc.tiering.domain.rules import RuleBook, RuleSet
from hvc.tiering.domain.scoring import annual_valid_from, evaluate_annual
from hvc.tiering.domain.segmentation import arpu_band, arpu_fen, high_end, rfm, vip_by_arpu
from hvc.tiering.domain.tiers import Tier
from hvc.tiering.domain.timeline import group_class, tier_at, timeline
from hvc.tiering.pipeline import MONTHLY_VIEW
from hvc.tiering.repository import Repository, from_docs

REPORTS = ("tiers", "group-classes", "high-end", "arpu-bands", "vip-by-arpu", "rfm")


def _shares(counts: Counter[str], keys: list[str]) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "total": total,
        "counts": {k: counts.get(k, 0) for k in keys},
        "shares": {k: round(counts.get(k, 0) / total, 4) if total else 0.0 for k in keys},
    }


async def report(
    repo: Repository, book: RuleBook, name: str, *, at: dt.datetime, period: str, year: int
) -> dict[str, Any]:
    rules = book.at(at)
    if name == "group-classes":
        counts: Counter[str] = Counter()
        for snaps in (await repo.all_groups()).values():
            latest = max(snaps, key=lambda s: (s.at, s.event_id))
            counts[group_class(latest, rules.groups)] += 1
        out = _shares(counts, ["A", "B", "C"])
        out["intended_shares"] = dict(rules.groups.intended_shares)
        return {"report": name, "ruleset_version": rules.version, **out}

    groups = await repo.all_groups() if name == "tiers" else {}
    counts = Counter()
    examples: dict[str, list[str]] = {}
    async for doc, annual, history in repo.scan():
        facts, _ = from_docs(doc, annual, history)
        key = _classify(name, facts, groups, book, rules, at=at, period=period, year=year)
        if key is None:
            continue
        counts[key] += 1
        ex = examples.setdefault(key, [])
        if len(ex) < 5:
            ex.append(facts.customer_id)
    keys = sorted(counts) if name in ("rfm", "arpu-bands") else _order(name, counts)
    params = {"at": at.isoformat(), "period": period, "year": year}
    return {
        "report": name,
        "ruleset_version": rules.version,
        "params": params,
        **_shares(counts, keys),
        "examples": examples,
    }


def _order(name: str, counts: Counter[str]) -> list[str]:
    if name in ("tiers", "vip-by-arpu"):
        return [t.name for t in reversed(Tier) if t.name in counts or name == "tiers"]
    return sorted(counts)


def _classify(
    name: str,
    facts: CustomerFacts,
    groups: Any,
    book: RuleBook,
    rules: RuleSet,
    *,
    at: dt.datetime,
    period: str,
    year: int,
) -> str | None:
    seg = rules.segmentation
    if name == "tiers":
        return tier_at(timeline(facts, groups, book), at).name
    if name == "high-end":
        return high_end(facts, period, rules)
    if name == "arpu-bands":
        arpu = arpu_fen(facts, period)
        return None if arpu is None else arpu_band(arpu, seg)
    if name == "vip-by-arpu":
        return vip_by_arpu(facts, year, seg)
    if name == "rfm":
        r, f, m = rfm(facts, at, seg)
        return f"R{r}F{f}M{m}"
    raise KeyError(name)


async def simulate(
    repo: Repository, book: RuleBook, candidate: RuleSet, *, year: int, as_of: dt.date
) -> dict[str, Any]:
    """Who would move from which tier to which if `candidate` scored `year`'s evaluation.

    Compared at the start of that evaluation's validity, current rules against candidate.
    """
    trial = book.with_ruleset(candidate)
    at = annual_valid_from(year, candidate)
    groups = await repo.all_groups()
    moves: Counter[tuple[str, str]] = Counter()
    customers = 0
    async for doc, annual, history in repo.scan():
        customers += 1
        facts, _ = from_docs(doc, annual, history)
        now_facts = _with_annual(facts, book.at_date(as_of), year, as_of)
        before = tier_at(timeline(now_facts, groups, book), at)
        after_facts = _with_annual(facts, candidate, year, as_of)
        after = tier_at(timeline(after_facts, groups, trial), at)
        moves[(before.name, after.name)] += 1
    tiers = [t.name for t in reversed(Tier)]
    matrix = {a: {b: moves.get((a, b), 0) for b in tiers} for a in tiers}
    return {
        "candidate_version": candidate.version,
        "year": year,
        "as_of": as_of.isoformat(),
        "compared_at": at.isoformat(),
        "customers": customers,
        "moved": sum(n for (a, b), n in moves.items() if a != b),
        "upgraded": sum(n for (a, b), n in moves.items() if Tier[b] > Tier[a]),
        "downgraded": sum(n for (a, b), n in moves.items() if Tier[b] < Tier[a]),
        "matrix": matrix,
    }


def _with_annual(facts: CustomerFacts, rules: RuleSet, year: int, as_of: dt.date) -> CustomerFacts:
    result = evaluate_annual(facts, year, as_of, rules)
    annual = {k: v for k, v in facts.annual.items() if k != str(year)}
    if result is not None:
        annual[str(year)] = result
    return CustomerFacts(
        facts.customer_id,
        facts.profiles,
        facts.bills,
        facts.payments,
        facts.plans,
        facts.overrides,
        annual,
    )


HELD = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP")  # NONE: everyone else


async def tiers_by_month(repo: Repository, first: str, last: str) -> dict[str, Any]:
    """Month by month, from the decisions' monthly counts (hvc.common.monthly): the tier
    distribution at each month's end (every flow into and out of each tier up to it: the
    customers tiering has decided on; a customer never decided holds no tier), the moves
    between tiers (from>to) and the sources of the decisions."""
    monthly.months(first, last)  # a valid range, or ValueError
    return by_month(await monthly.read_all(repo.db, MONTHLY_VIEW, last), first, last)


def by_month(flows: dict[str, dict[str, int]], first: str, last: str) -> dict[str, Any]:
    """`tiers_by_month` from the monthly counts of every month up to `last`."""
    wanted = monthly.months(first, last)
    running: Counter[str] = Counter()
    items = []
    for m in sorted(set(flows) | set(wanted)):
        counts = flows.get(m, {})
        for tier, n in monthly.split(counts, "in").items():
            running[tier] += n
        for tier, n in monthly.split(counts, "out").items():
            running[tier] -= n
        if m < first:
            continue
        items.append(
            {
                "month": m,
                "distribution": {t: running.get(t, 0) for t in HELD},
                "moves": monthly.split(counts, "move"),
                "by_source": monthly.split(counts, "source"),
                "decisions": sum(monthly.split(counts, "source").values()),
            }
        )
    return {"from": first, "to": last, "items": items}
