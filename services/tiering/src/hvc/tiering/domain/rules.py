"""Rule sets: versioned, dated data for scoring, plan mapping and segmentation, validated."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hvc.tiering.domain.tiers import Tier, TierName

ASSESSED_TIERS = (Tier.DIAMOND, Tier.PLATINUM, Tier.GOLD, Tier.SILVER, Tier.VIP)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenureStep(_Strict):
    min_years: int = Field(ge=0)
    points: int = Field(ge=0)


class PlanStep(_Strict):
    min_monthly_fee_fen: int = Field(ge=0)
    tier: TierName


class GroupClassRules(_Strict):
    """Group customer classes (002/003)."""

    a_min_handsets: int = 500
    a_min_monthly_spend_fen: int = Field(default=50_000_000, ge=0)  # "highest spend"
    a_sectors: tuple[str, ...] = (
        "government",
        "military",
        "media",
        "telecom",
        "post",
        "banking",
        "power",
        "water",
        "gas",
        "roads",
        "airports",
        "railways",
    )
    b_min_handsets: int = 100
    b_sectors: tuple[str, ...] = ("securities", "insurance")
    c_min_handsets: int = 10
    intended_shares: dict[Literal["A", "B", "C"], float] = {"A": 0.05, "B": 0.25, "C": 0.70}
    key_person_tiers: dict[Literal["A", "B", "C"], TierName] = {
        "A": Tier.PLATINUM,
        "B": Tier.GOLD,
        "C": Tier.SILVER,
    }


FileItem = Literal["name", "sector", "handsets", "key_person", "manager"]


class GroupFileRules(_Strict):
    """A group's file and the group customer department's indicators (003, DOMAIN §6)."""

    # What a complete file (建档) has: the group's name, sector and handsets, at least one key
    # person, and a manager.
    required: tuple[FileItem, ...] = ("name", "sector", "handsets", "key_person", "manager")
    # Filing rate targets by class ("AD类集团95%的建档率, c类客户80%": A and B at 95%).
    filing_targets: dict[Literal["A", "B", "C"], float] = {"A": 0.95, "B": 0.95, "C": 0.80}
    # Member coverage (members who are subscribers / the group's handsets) and stability
    # (members at a period's start still members at its end) targets.
    coverage_target: float = Field(default=0.27, ge=0, le=1)
    stability_target: float = Field(default=0.70, ge=0, le=1)
    # Staffing rule 003: one account manager per 50 group customers.
    groups_per_manager: int = Field(default=50, ge=1)


class SegmentationRules(_Strict):
    """The other segmentations of DOMAIN §1.3, all in fen."""

    high_end_monthly_fen: int = Field(default=20_000, ge=0)
    high_end_consecutive_months: int = Field(default=3, ge=1)
    new_customer_months: int = Field(default=3, ge=1)
    # ARPU bands (yuan/month < 120, 120-200, 200-500, > 500): the upper bounds in fen.
    arpu_band_bounds_fen: tuple[int, ...] = (12_000, 20_000, 50_000)
    # The older VIP-by-ARPU scheme, yuan per year: DIAMOND > 3000, GOLD 1500-3000, SILVER 666-1500.
    vip_arpu_yearly_fen: dict[Literal["DIAMOND", "GOLD", "SILVER"], int] = {
        "DIAMOND": 300_000,
        "GOLD": 150_000,
        "SILVER": 66_600,
    }
    # RFM: score 1-5 by how many of these bounds a figure reaches (recency: fewer days is better).
    rfm_recency_days: tuple[int, ...] = (90, 60, 30, 14)
    rfm_frequency_payments: tuple[int, ...] = (3, 6, 9, 12)
    rfm_monetary_fen: tuple[int, ...] = (60_000, 150_000, 300_000, 600_000)

    @field_validator("arpu_band_bounds_fen", "rfm_frequency_payments", "rfm_monetary_fen")
    @classmethod
    def _ascending(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if list(v) != sorted(set(v)):
            raise ValueError("bounds must be strictly ascending")
        return v

    @field_validator("rfm_recency_days")
    @classmethod
    def _descending(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if list(v) != sorted(set(v), reverse=True):
            raise ValueError("recency bounds must be strictly descending")
        return v


class RuleSet(_Strict):
    """One version of the tier programme's rules, in force from `effective_from`."""

    version: str = Field(min_length=1, max_length=64)
    effective_from: dt.date
    description: str = ""
    timezone: str = "Asia/Shanghai"
    thresholds: dict[Literal["DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP"], int]
    tenure_points: tuple[TenureStep, ...]
    min_tenure_years: int = Field(default=1, ge=0)
    # A 29 February join date's anniversary in other years.
    leap_day_anniversary: Literal["FEB_28", "MAR_1"] = "FEB_28"
    # The annual tier is valid from this day of the year after the evaluated year.
    annual_valid_from_month: int = Field(default=2, ge=1, le=12)
    annual_valid_from_day: int = Field(default=1, ge=1, le=28)
    plan_tiers: tuple[PlanStep, ...]
    groups: GroupClassRules = GroupClassRules()
    group_file: GroupFileRules = GroupFileRules()
    segmentation: SegmentationRules = SegmentationRules()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        if set(self.thresholds) != {t.name for t in ASSESSED_TIERS}:
            raise ValueError("thresholds must name DIAMOND, PLATINUM, GOLD, SILVER and VIP")
        values = [self.threshold(t) for t in ASSESSED_TIERS]
        if values != sorted(set(values), reverse=True) or values[-1] <= 0:
            raise ValueError("thresholds must be positive and strictly descending by tier")
        years = [s.min_years for s in self.tenure_points]
        if years != sorted(set(years), reverse=True):
            raise ValueError("tenure_points must be ordered by min_years, descending, unique")
        fees = [s.min_monthly_fee_fen for s in self.plan_tiers]
        if not fees or fees != sorted(set(fees), reverse=True) or fees[-1] != 0:
            raise ValueError("plan_tiers must descend by fee and end with a 0 fen catch-all")
        tiers = [s.tier for s in self.plan_tiers]
        if tiers != sorted(tiers, reverse=True) or Tier.NONE in tiers:
            raise ValueError("plan_tiers must map higher fees to higher GoTone tiers")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def threshold(self, tier: Tier) -> int:
        return self.thresholds[tier.name]  # type: ignore[index]


class RuleBook:
    """Every rule set version, by effective date; answers which one is in force."""

    def __init__(self, rulesets: Iterable[RuleSet]) -> None:
        self.rulesets: tuple[RuleSet, ...] = tuple(sorted(rulesets, key=lambda r: r.effective_from))
        if not self.rulesets:
            raise ValueError("no rule set")
        versions = [r.version for r in self.rulesets]
        if len(set(versions)) != len(versions):
            raise ValueError(f"duplicate rule set versions: {versions}")
        dates = [r.effective_from for r in self.rulesets]
        if len(set(dates)) != len(dates):
            raise ValueError("two rule sets take effect on the same day")
        self.by_version = {r.version: r for r in self.rulesets}

    @property
    def zone(self) -> ZoneInfo:
        return self.rulesets[-1].zone

    def at_date(self, day: dt.date) -> RuleSet:
        """The rule set in force on a local calendar day (the earliest one before any)."""
        current = self.rulesets[0]
        for r in self.rulesets:
            if r.effective_from <= day:
                current = r
        return current

    def at(self, instant: dt.datetime) -> RuleSet:
        return self.at_date(instant.astimezone(self.zone).date())

    def with_ruleset(self, extra: RuleSet) -> RuleBook:
        """The book with one rule set added or replaced (for a dry run)."""
        kept = [
            r
            for r in self.rulesets
            if r.version != extra.version and r.effective_from != extra.effective_from
        ]
        return RuleBook([*kept, extra])


def parse_ruleset(text: str, origin: str = "<text>") -> RuleSet:
    try:
        return RuleSet.model_validate(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid rule set {origin}: {exc}") from exc


def load_rulebook(paths: Sequence[Path]) -> RuleBook:
    """Load every *.json rule set under the given files or folders; fail loudly."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.glob("*.json")) if p.is_dir() else [p])
    if not files:
        raise ValueError(f"no rule set files under {[str(p) for p in paths]}")
    return RuleBook(parse_ruleset(f.read_text(), str(f)) for f in files)


DEFAULT_RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
