"""The facts the tiering rules work on: what was received, never what was concluded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from hvc.tiering.domain.tiers import Source, Tier


@dataclass(frozen=True)
class Bill:
    bill_id: str
    period: str  # YYYY-MM, the operator's calendar month
    amount_fen: int
    countable_fen: int
    at: dt.datetime  # occurred_at: a re-issued bill with the same id replaces an older one


@dataclass(frozen=True)
class Payment:
    event_id: str
    at: dt.datetime
    amount_fen: int


@dataclass(frozen=True)
class PlanVersion:
    """A PlanChanged: from `effective_from` (until `effective_to`) this plan applies."""

    event_id: str
    plan_id: str
    monthly_fee_fen: int
    gotone: bool
    effective_from: dt.datetime
    effective_to: dt.datetime | None
    at: dt.datetime


@dataclass(frozen=True)
class Override:
    """A supervisor's manual floor, in force from set_at until expires_at or the next one."""

    override_id: str
    tier: Tier
    set_at: dt.datetime
    expires_at: dt.datetime
    reason: str
    by: str


@dataclass(frozen=True)
class Profile:
    """The tier-relevant part of one CustomerUpserted."""

    event_id: str
    at: dt.datetime
    joined_on: dt.date | None
    group_id: str | None
    is_key_person: bool


@dataclass(frozen=True)
class GroupSnapshot:
    event_id: str
    at: dt.datetime
    group_id: str
    name: str
    sector: str
    handsets: int
    monthly_spend_fen: int


@dataclass(frozen=True)
class AnnualResult:
    year: int
    as_of: dt.date
    ruleset_version: str
    consumption_points: int
    tenure_points: int
    tenure_years: int
    score: int
    tier: Tier
    valid_from: dt.datetime

    @property
    def key(self) -> str:
        return str(self.year)


@dataclass
class CustomerFacts:
    customer_id: str
    profiles: list[Profile] = field(default_factory=list)
    bills: dict[str, Bill] = field(default_factory=dict)
    payments: list[Payment] = field(default_factory=list)
    plans: list[PlanVersion] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    annual: dict[str, AnnualResult] = field(default_factory=dict)

    @property
    def latest_profile(self) -> Profile | None:
        return max(self.profiles, key=lambda p: (p.at, p.event_id), default=None)

    @property
    def joined_on(self) -> dt.date | None:
        p = self.latest_profile
        return p.joined_on if p else None

    def countable_by_period(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.bills.values():
            out[b.period] = out.get(b.period, 0) + b.countable_fen
        return out

    def amount_by_period(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.bills.values():
            out[b.period] = out.get(b.period, 0) + b.amount_fen
        return out


@dataclass(frozen=True)
class Component:
    """What one source says the tier is at an instant."""

    tier: Tier
    source: Source
    ruleset_version: str
    detail: str
    # The detail's values, for a display in any language (the catalogue's component_detail
    # template of the source words them).
    params: tuple[tuple[str, str], ...] = ()
