"""SLA policy (DOMAIN §4): versioned data, validated at start-up, pinned on each complaint."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hvc.common import workcal
from hvc.common.workcal import WorkingCalendar

TIERS = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP", "NONE")
CHANNELS = (
    "BUSINESS_HALL",
    "HOTLINE_10086",
    "APP_WEB",
    "SMS",
    "CONSUMER_315",
    "MAYORS_MAILBOX",
    "MIIT",
)

CATEGORIES = (
    "NETWORK",
    "BILLING",
    "SERVICE",
    "BUSINESS",
    "VALUE_ADDED",
    "MARKETING",
    "TERMINAL",
    "ROAMING",
    "PRIVACY",
    "OTHER",
)


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_response_minutes: int = Field(gt=0)
    resolution_minutes: int = Field(gt=0)

    def stricter(self, other: Targets) -> Targets:
        return Targets(
            first_response_minutes=min(self.first_response_minutes, other.first_response_minutes),
            resolution_minutes=min(self.resolution_minutes, other.resolution_minutes),
        )


class CalendarSpec(BaseModel):
    """`24x7`, or business hours on given ISO weekdays (1 = Monday) without the holidays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["24x7", "business_hours"] = "24x7"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    opens: dt.time = dt.time(9)
    closes: dt.time = dt.time(18)
    holidays: tuple[dt.date, ...] = ()
    workdays: tuple[dt.date, ...] = ()  # weekend days worked (调休)
    # The operator's working calendar (hvc.common.workcal: public holidays and adjusted working
    # days) applies too; its dates are merged in when the policies are loaded.
    working_calendar: bool = False

    @model_validator(mode="after")
    def _hours(self) -> CalendarSpec:
        if self.kind == "business_hours":
            if not self.opens < self.closes:
                raise ValueError("business hours must open before they close")
            if not self.weekdays or not set(self.weekdays) <= set(range(1, 8)):
                raise ValueError("weekdays are ISO numbers 1-7")
        return self


class SlaPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    effective_from: dt.date
    description: str = ""
    timezone: str = "Asia/Shanghai"
    targets: dict[str, Targets]
    regulator_channels: tuple[str, ...] = ("MIIT",)
    regulator_targets: Targets
    at_risk_percent: int = Field(default=80, gt=0, lt=100)
    escalation_step_percent: int = Field(default=50, gt=0)
    escalation_levels: tuple[str, ...] = ("AGENT", "TEAM_LEAD", "DEPARTMENT_HEAD", "DIRECTOR")
    pause_cap_minutes: int = Field(default=4320, ge=0)
    calendar: CalendarSpec = CalendarSpec()
    # Channels worked on another calendar than `calendar` (those handled in office hours).
    channel_calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    # The complaint category taxonomy: what a filing's free-text category is counted as
    # (upper-cased, `-` and spaces as `_`, then an alias), anything else OTHER.
    categories: tuple[str, ...] = CATEGORIES
    category_aliases: dict[str, str] = Field(default_factory=dict)

    def category(self, raw: str) -> str:
        """The taxonomy's category of a filing's category (`network` and `NETWORK` alike)."""
        code = "_".join(raw.strip().upper().replace("-", " ").split())
        code = self.category_aliases.get(code, code)
        return code if code in self.categories else "OTHER"

    @model_validator(mode="after")
    def _taxonomy(self) -> SlaPolicy:
        if "OTHER" not in self.categories:
            raise ValueError("the category taxonomy needs OTHER")
        if not set(self.category_aliases.values()) <= set(self.categories):
            raise ValueError("a category alias names a category outside the taxonomy")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @model_validator(mode="after")
    def _complete(self) -> SlaPolicy:
        if set(self.targets) != set(TIERS):
            raise ValueError(f"targets must name exactly the tiers {TIERS}")
        if not set(self.regulator_channels) <= set(CHANNELS):
            raise ValueError(f"unknown regulator channel in {self.regulator_channels}")
        if not set(self.channel_calendars) <= set(CHANNELS):
            raise ValueError(
                f"unknown channel in channel_calendars: {sorted(self.channel_calendars)}"
            )
        if len(self.escalation_levels) < 2:
            raise ValueError("at least two escalation levels")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def calendar_for(self, channel: str) -> CalendarSpec:
        return self.channel_calendars.get(channel, self.calendar)

    def with_working_calendar(self, working: WorkingCalendar) -> SlaPolicy:
        """The policy with the working calendar's dates in each calendar that uses it."""

        def merged(spec: CalendarSpec) -> CalendarSpec:
            if not spec.working_calendar:
                return spec
            holidays = tuple(sorted(set(spec.holidays) | set(working.holidays)))
            workdays = tuple(sorted(set(spec.workdays) | set(working.workdays)))
            return spec.model_copy(update={"holidays": holidays, "workdays": workdays})

        channels = {c: merged(s) for c, s in self.channel_calendars.items()}
        return self.model_copy(
            update={"calendar": merged(self.calendar), "channel_calendars": channels}
        )

    def uses_working_calendar(self) -> bool:
        specs = (self.calendar, *self.channel_calendars.values())
        return any(s.working_calendar for s in specs)

    def targets_for(self, tier: str, channel: str) -> Targets:
        base = self.targets.get(tier, self.targets["NONE"])
        if channel in self.regulator_channels:
            return base.stricter(self.regulator_targets)
        return base


def load_policies(folder: Path, working: WorkingCalendar | None = None) -> list[SlaPolicy]:
    """The policies of a folder, with the working calendar (default: the shipped one) merged
    into the calendars that use it."""
    working = working or workcal.load(workcal.SHIPPED)
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            policy = SlaPolicy.model_validate(json.loads(path.read_text()))
            out.append(policy.with_working_calendar(working))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid SLA policy {path}: {exc}") from exc
    if not out:
        raise ValueError(f"no SLA policy in {folder}")
    versions = [p.version for p in out]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate policy versions in {folder}")
    return sorted(out, key=lambda p: p.effective_from)


def policy_at(policies: list[SlaPolicy], day: dt.date) -> SlaPolicy:
    """The policy in force on `day` (the earliest one before any is in force)."""
    chosen = policies[0]
    for p in policies:
        if p.effective_from <= day:
            chosen = p
    return chosen


DEFAULT_POLICIES = Path(__file__).resolve().parent.parent / "policies"
