"""The other segmentations of DOMAIN §1.3: high-end flags, ARPU bands, VIP by ARPU, RFM."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from hvc.tiering.domain.model import CustomerFacts
from hvc.tiering.domain.rules import RuleSet, SegmentationRules


def period_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def periods_back(period: str, n: int) -> list[str]:
    """`n` periods ending with `period`, oldest first."""
    y, m = int(period[:4]), int(period[5:7])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def high_end(facts: CustomerFacts, period: str, rules: RuleSet) -> str | None:
    """HIGH_END, QUASI_HIGH_END or None for the month `period` (004)."""
    seg = rules.segmentation
    spend = facts.countable_by_period()
    window = periods_back(period, seg.high_end_consecutive_months)
    if all(spend.get(p, 0) >= seg.high_end_monthly_fen for p in window):
        return "HIGH_END"
    joined = facts.joined_on
    if joined is not None and period_of(joined) in periods_back(period, seg.new_customer_months):
        for p in facts.plans:
            if p.gotone and p.monthly_fee_fen >= seg.high_end_monthly_fen:
                return "HIGH_END"
    if spend.get(period, 0) >= seg.high_end_monthly_fen and not any(
        v >= seg.high_end_monthly_fen for k, v in spend.items() if k < period
    ):
        return "QUASI_HIGH_END"
    return None


def arpu_fen(facts: CustomerFacts, period: str, months: int = 3) -> int | None:
    amounts = facts.amount_by_period()
    billed = [amounts[p] for p in periods_back(period, months) if p in amounts]
    return sum(billed) // len(billed) if billed else None


def arpu_band(arpu: int, seg: SegmentationRules) -> str:
    bounds = seg.arpu_band_bounds_fen
    for i, b in enumerate(bounds):
        if arpu < b:
            return f"<{b // 100}" if i == 0 else f"{bounds[i - 1] // 100}-{b // 100}"
    return f">={bounds[-1] // 100}"


def vip_by_arpu(facts: CustomerFacts, year: int, seg: SegmentationRules) -> str | None:
    """The older scheme (002/003): yearly ARPU in yuan > 3000 DIAMOND, 1500-3000 GOLD, 666-1500."""
    yearly = sum(v for k, v in facts.amount_by_period().items() if k.startswith(f"{year:04d}-"))
    bands = seg.vip_arpu_yearly_fen
    if yearly > bands["DIAMOND"]:
        return "DIAMOND"
    if yearly >= bands["GOLD"]:
        return "GOLD"
    if yearly >= bands["SILVER"]:
        return "SILVER"
    return None


def _score(value: int, bounds: Sequence[int], *, lower_is_better: bool = False) -> int:
    if lower_is_better:
        return 1 + sum(1 for b in bounds if value <= b)
    return 1 + sum(1 for b in bounds if value >= b)


def rfm(facts: CustomerFacts, as_of: dt.datetime, seg: SegmentationRules) -> tuple[int, int, int]:
    """Recency, frequency and monetary scores 1-5 over the 12 months before `as_of`."""
    since = as_of - dt.timedelta(days=365)
    recent = [p for p in facts.payments if since <= p.at <= as_of]
    last = max((p.at for p in facts.payments if p.at <= as_of), default=None)
    days = (as_of - last).days if last else 10_000
    return (
        _score(days, seg.rfm_recency_days, lower_is_better=True),
        _score(len(recent), seg.rfm_frequency_payments),
        _score(sum(p.amount_fen for p in recent), seg.rfm_monetary_fen),
    )
