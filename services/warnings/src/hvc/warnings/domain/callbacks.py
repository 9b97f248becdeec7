"""Callbacks and visits (回访/拜访, DOMAIN §6 from 001 §2.3): every quarter, a phone callback
for each DIAMOND and PLATINUM customer and each group key person, planned in the quarter's
first week and due by its end, on the customer's account manager's list; and a visit to each
of the highest-value group accounts (class A by default), planned within the quarter's first
weeks, on the group's manager's list. Pure: the pipeline (hvc.warnings.callbacks) plans them
and the HTTP side records their outcome."""

from __future__ import annotations

import datetime as dt
import hashlib

from pydantic import BaseModel, ConfigDict, Field

OUTCOMES = ("REACHED", "NOT_REACHED", "DECLINED")


class CallbackRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: tuple[str, ...] = ("DIAMOND", "PLATINUM")
    key_persons: bool = True
    plan_days: int = Field(default=7, ge=1, le=28)  # planned within the quarter's first days


class VisitRules(BaseModel):
    """Visits to group accounts: the classes visited (003's A: the largest and key sectors),
    planned within the quarter's first `plan_days`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: tuple[str, ...] = ("A",)
    plan_days: int = Field(default=28, ge=1, le=28)


def visit_reason(group_class: str, rules: VisitRules) -> str | None:
    """Why the group is visited this quarter (None: not)."""
    return f"GROUP_CLASS_{group_class}" if group_class and group_class in rules.classes else None


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_quarter_start(day: dt.date) -> dt.date:
    start = quarter_start(day)
    month = start.month + 3
    return dt.date(start.year + (month > 12), (month - 1) % 12 + 1, 1)


def quarter_name(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def reason(tier: str, key_person: bool, rules: CallbackRules) -> str | None:
    """Why the customer is called back this quarter (None: not)."""
    if tier in rules.tiers:
        return "TIER"
    if key_person and rules.key_persons:
        return "KEY_PERSON"
    return None


def planned_on(
    customer_id: str, start: dt.date, today: dt.date, rules: CallbackRules | VisitRules
) -> dt.date:
    """The day in the quarter's first `plan_days` the call is planned for (spread by the
    customer's id, so a manager's calls do not all fall on the first day); a customer who
    becomes due later in the quarter is planned from that day."""
    h = int.from_bytes(hashlib.blake2b(customer_id.encode(), digest_size=4).digest(), "big")
    return max(start + dt.timedelta(days=h % rules.plan_days), today)
