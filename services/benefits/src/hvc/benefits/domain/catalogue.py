"""The benefit catalogue (DOMAIN §3): versioned data, validated at start-up."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TIERS = ("NONE", "VIP", "SILVER", "GOLD", "PLATINUM", "DIAMOND")
Kind = Literal["unlimited", "automatic", "per_tier_period", "yearly_quota"]
CLAIMABLE = ("unlimited", "per_tier_period", "yearly_quota")


class Benefit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    tiers: tuple[str, ...] = ()  # who has it; for quota kinds, the tiers with a quota
    quota: dict[str, int] = Field(default_factory=dict)  # yearly_quota: claims per year
    quantity: dict[str, int] = Field(default_factory=dict)  # per_tier_period: e.g. days
    hours: dict[str, int] = Field(default_factory=dict)  # EMERGENCY_RESTORE
    valid_days: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _shape(self) -> Benefit:
        for table in (self.quota, self.quantity, self.hours):
            if not set(table) <= set(TIERS) or any(v <= 0 for v in table.values()):
                raise ValueError(f"tier tables name tiers {TIERS} with positive values")
        if self.kind == "yearly_quota" and not self.quota:
            raise ValueError("a yearly quota needs its quota by tier")
        if self.kind == "per_tier_period" and not self.quantity:
            raise ValueError("a per-tier-period benefit needs its quantity by tier")
        if self.kind in ("yearly_quota", "per_tier_period") and self.valid_days is None:
            raise ValueError("a claimable grant needs its validity")
        return self

    def eligible(self, tier: str) -> bool:
        if self.kind == "yearly_quota":
            return self.quota.get(tier, 0) > 0
        if self.kind == "per_tier_period":
            return self.quantity.get(tier, 0) > 0
        if self.hours:
            return tier in self.hours
        return tier in self.tiers


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    effective_from: dt.date
    description: str = ""
    timezone: str = "Asia/Shanghai"
    gotone_tiers: tuple[str, ...]
    benefits: dict[str, Benefit]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @model_validator(mode="after")
    def _known(self) -> Catalogue:
        if not set(self.gotone_tiers) <= set(TIERS):
            raise ValueError("unknown GoTone tier")
        for code in ("EMERGENCY_RESTORE", "BIRTHDAY_FREE"):
            if code not in self.benefits:
                raise ValueError(f"the catalogue must define {code}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_catalogue(path: Path) -> Catalogue:
    try:
        return Catalogue.model_validate(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid benefit catalogue {path}: {exc}") from exc


DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "catalogue" / "2025.1.json"
