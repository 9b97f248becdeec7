"""Benefit rules as pure functions: birthdays, restoration hours, tier at an instant."""

from __future__ import annotations

import calendar
import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence

from hvc.benefits.domain.catalogue import Catalogue


def birthday_in(year: int, month: int, day: int) -> dt.date:
    """The birthday celebrated in `year`: 29 February falls on 28 February in other years."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return dt.date(year, month, day)


def tier_at(timeline: Sequence[tuple[int, str]], at_s: int) -> tuple[str, int]:
    """(tier, effective_from seconds) in force at `at_s`; ("NONE", 0) before any decision.
    `timeline` is sorted by effective_from."""
    i = bisect_right([t for t, _ in timeline], at_s)
    return (timeline[i - 1][1], timeline[i - 1][0]) if i else ("NONE", 0)


def restore_hours(cat: Catalogue, tier: str, credit_restore_hours: int) -> int | None:
    """The one restoration for an arrears suspension: the longest of the tier's and the
    credit rating's, for an eligible tier; None when the tier carries none."""
    tier_hours = cat.benefits["EMERGENCY_RESTORE"].hours.get(tier)
    if tier_hours is None:
        return None
    return max(tier_hours, credit_restore_hours)


def waivable(kind: str, roaming: str, premium: bool, forwarded: bool) -> bool:
    """Domestic basic usage: voice, data, SMS; not HMT/international, premium or forwarded."""
    return (
        kind in ("VOICE", "DATA", "SMS") and roaming == "DOMESTIC" and not premium and not forwarded
    )
