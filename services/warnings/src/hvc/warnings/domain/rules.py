"""Warning rules: versioned, dated thresholds, rival numbers and levels (DOMAIN §2), validated."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hvc.warnings.domain.callbacks import CallbackRules, VisitRules
from hvc.warnings.domain.notices import CareRules, NoticeRules


class Code(StrEnum):
    RIVAL_SERVICE_CALL = "RIVAL_SERVICE_CALL"
    FORWARD_TO_RIVAL = "FORWARD_TO_RIVAL"
    KEEP_NUMBER_SUSPENSION = "KEEP_NUMBER_SUSPENSION"
    PAYMENT_DUE_SOON = "PAYMENT_DUE_SOON"
    ZERO_SPEND = "ZERO_SPEND"
    SPEND_DROP = "SPEND_DROP"
    CONTRACT_EXPIRY = "CONTRACT_EXPIRY"
    DATA_DROP = "DATA_DROP"
    OVERDUE = "OVERDUE"
    PORT_OUT_QUERY = "PORT_OUT_QUERY"
    GROUP_MEMBER_CHURN = "GROUP_MEMBER_CHURN"


class Category(StrEnum):
    """DOMAIN §2 and §6: what a warning is for, and what the reports split by."""

    CARE = "CARE"  # 客户关怀类
    SERVICE_MARKETING = "SERVICE_MARKETING"  # 服务营销类


# The sources' split (004): care for all but CONTRACT_EXPIRY, which is service marketing.
DEFAULT_CATEGORIES = {c: Category.CARE for c in Code} | {
    Code.CONTRACT_EXPIRY: Category.SERVICE_MARKETING
}


class WarningRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    effective_from: dt.date
    description: str = ""
    timezone: str = "Asia/Shanghai"
    rival_service_numbers: tuple[str, ...]
    rival_call_min_seconds: int = Field(ge=0)  # fires strictly above
    rival_prefixes: tuple[str, ...]
    forward_consecutive_days: int = Field(ge=1)
    payment_due_soon_days: int = Field(ge=0)
    spend_drop_percent: int = Field(gt=0, lt=100)
    spend_drop_min_mean_fen: int = Field(ge=0)
    data_drop_percent: int = Field(gt=0, lt=100)
    contract_expiry_months: int = Field(ge=1)
    # A group warning when this many members of one group are warned in one month (003).
    group_warning_members: int = Field(default=3, ge=2)
    levels: dict[Code, int]
    categories: dict[Code, Category] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    task_due_hours: dict[int, int]
    # Staffing (003): at most this many individual VIP and group customers per manager.
    manager_max_individuals: int = Field(default=400, ge=1)
    manager_max_groups: int = Field(default=50, ge=1)
    # Outbound contact: at most one per this many days, except for warnings of these levels.
    contact_min_interval_days: int = Field(default=7, ge=0)
    contact_cap_exempt_levels: tuple[int, ...] = (1,)
    # Proactive notices of outages (DOMAIN §6): lead times, tiers, services DND does not hold.
    notices: NoticeRules = Field(default_factory=NoticeRules)
    # Care touches (DOMAIN §6): which, to whom, when (hvc.warnings.care).
    care: CareRules = Field(default_factory=CareRules)
    # Quarterly callbacks (DOMAIN §6): to whom (hvc.warnings.callbacks).
    callbacks: CallbackRules = Field(default_factory=CallbackRules)
    # Quarterly visits to the highest-value group accounts (hvc.warnings.callbacks).
    visits: VisitRules = Field(default_factory=VisitRules)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @field_validator("rival_service_numbers", "rival_prefixes")
    @classmethod
    def _digits(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or any(not n.isdigit() for n in v):
            raise ValueError("numbers and prefixes are non-empty digit strings")
        return v

    @model_validator(mode="after")
    def _complete(self) -> WarningRules:
        if set(self.levels) != set(Code):
            raise ValueError(f"levels must name every code: {sorted(set(Code) - set(self.levels))}")
        if set(self.categories) != set(Code):
            missing = sorted(set(Code) - set(self.categories))
            raise ValueError(f"categories must name every code: {missing}")
        if not set(self.levels.values()) <= set(self.task_due_hours):
            raise ValueError("every level used needs a task due time")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def category_of(self, code: str) -> str:
        """The category of a warning code by name (UNKNOWN: a code these rules do not have)."""
        return self.categories[Code(code)].value if code in Code.__members__ else "UNKNOWN"


def load_rules(path: Path) -> WarningRules:
    try:
        return WarningRules.model_validate(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid warning rules {path}: {exc}") from exc


DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rulesets" / "2025.1.json"
