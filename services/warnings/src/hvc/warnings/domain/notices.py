"""Proactive notices (通告制度, DOMAIN §6): which high-value customers an outage concerns, when
each is told, and who is not told and why. Pure: the pipeline (hvc.warnings.outages) keeps the
outages and the customers' cells in its partition's state and does the rest.

- A planned cut-over or upgrade is announced ahead: a notice at each lead time before it
  starts (24 h and 1 h by default). Announced later than a lead time, the latest lead time
  already past is sent at once and the earlier ones are skipped.
- An unplanned outage: a notice at once, and another when it ends.
- Do-not-disturb is respected, except for an outage of one of the customer's own services
  (by default the mobile services every subscriber has: voice, data, SMS).
- Only the tiers of the programme are told (the high-value ones).

The rules of care touches (hvc.warnings.care) are here too: the messages to customers."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PLANNED = ("PLANNED_CUTOVER", "UPGRADE")
HOUR_MS = 3_600_000
STARTED, ENDED = "started", "ended"


class NoticeRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lead_hours: tuple[int, ...] = (24, 1)  # before a planned outage starts
    tiers: tuple[str, ...] = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP")
    own_services: tuple[str, ...] = ("VOICE", "DATA", "SMS")  # DND does not hold them back
    channel: Literal["SMS", "APP"] = "SMS"
    max_cells: int = Field(default=20_000, ge=1)  # of one outage: more is refused (dead letter)

    @field_validator("lead_hours")
    @classmethod
    def _leads(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(h <= 0 for h in v) or len(set(v)) != len(v):
            raise ValueError("lead hours are distinct positive hours")
        return tuple(sorted(v, reverse=True))


class CareRules(BaseModel):
    """Care touches (hvc.warnings.care): which, to which tiers, when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: tuple[str, ...] = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP")
    kinds: tuple[Literal["bill-due", "benefit-expiry", "birthday"], ...] = (
        "bill-due",
        "benefit-expiry",
        "birthday",
    )
    benefit_expiry_days: int = Field(default=7, ge=1)
    birthday_hour: int = Field(default=9, ge=0, le=23)
    channel: Literal["SMS", "APP"] = "SMS"


@dataclasses.dataclass(frozen=True)
class Outage:
    outage_id: str
    kind: str
    services: tuple[str, ...]
    cells: tuple[str, ...]
    areas: tuple[str, ...]
    starts_ms: int
    ends_ms: int | None
    announced_ms: int
    description: str
    ended_ms: int | None = None

    @property
    def planned(self) -> bool:
        return self.kind in PLANNED

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of_state(cls, d: dict[str, Any]) -> Outage:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in fields}
        for k in ("services", "cells", "areas"):
            values[k] = tuple(values[k])
        return cls(**values)


def phase_dues(outage: Outage, rules: NoticeRules) -> dict[str, int]:
    """Each notice of the outage and when it is due (before it ends: ENDED comes with the end)."""
    if outage.planned:
        return {f"before-{h}h": outage.starts_ms - h * HOUR_MS for h in rules.lead_hours}
    return {STARTED: outage.announced_ms}


def plan(dues: dict[str, int], now_ms: int) -> tuple[list[str], list[str], dict[str, int]]:
    """(sent at once, skipped, later with their dues): of the notices already due, the latest
    is sent now and the earlier skipped (an outage announced late is told once, not twice);
    the others wait for their time."""
    past = sorted((due, p) for p, due in dues.items() if due <= now_ms)
    later = {p: due for p, due in dues.items() if due > now_ms}
    now = [past[-1][1]] if past else []
    skipped = [p for _, p in past[:-1]]
    return now, skipped, later


def withheld(tier: str, do_not_disturb: bool, outage: Outage, rules: NoticeRules) -> str | None:
    """Why a customer the outage concerns is not told (None: told)."""
    if tier not in rules.tiers:
        return "NOT_HIGH_VALUE"
    if do_not_disturb and not set(outage.services) & set(rules.own_services):
        return "DO_NOT_DISTURB"
    return None


def template(outage: Outage, phase: str) -> str:
    if phase == ENDED:
        return "outage-ended"
    if phase == STARTED:
        return "outage-unplanned"
    return "outage-planned"
