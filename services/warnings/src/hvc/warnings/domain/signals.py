"""Churn signals of DOMAIN §2 as pure functions of facts and the rules (time is passed in).

A signal names its (code, period): one warning per (customer, code, period) is kept by the
caller, so a signal may be computed any number of times. Days are the operator's calendar
days; money and volumes are compared in integers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from hvc.common.calendar import midnight
from hvc.warnings.domain.rules import Code, WarningRules

_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class Signal:
    code: Code
    period: str  # YYYY-MM-DD for daily signals, YYYY-MM for monthly ones
    summary: str
    figures: Mapping[str, int] = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()
    # What the evidence names besides its figures (a number called, a due day), for the
    # people who read it (the workbench's catalogue words it); not in the event's contract.
    notes: Mapping[str, str] = field(default_factory=dict)


def local_day(instant: dt.datetime, rules: WarningRules) -> dt.date:
    return instant.astimezone(rules.zone).date()


def day_start(day: dt.date, rules: WarningRules) -> dt.datetime:
    """Local midnight at the start of `day`, as a UTC instant."""
    return midnight(day, rules.zone)


def normalize(number: str) -> str:
    """Digits only, without the +86 / 0086 country code of a mainland mobile number."""
    digits = _NON_DIGITS.sub("", number)
    for cc in ("0086", "86"):
        if digits.startswith(cc) and len(digits) == len(cc) + 11:
            return digits[len(cc) :]
    return digits


def is_rival_mobile(number: str, rules: WarningRules) -> bool:
    n = normalize(number)
    return len(n) == 11 and n.startswith(rules.rival_prefixes)


def rival_service_call(
    event_id: str, other_number: str, duration_s: int, at: dt.datetime, rules: WarningRules
) -> Signal | None:
    """A call with a rival carrier's service line lasting more than the threshold."""
    number = normalize(other_number)
    if number not in rules.rival_service_numbers or duration_s <= rules.rival_call_min_seconds:
        return None
    return Signal(
        Code.RIVAL_SERVICE_CALL,
        local_day(at, rules).isoformat(),
        f"{duration_s} s with {number}",
        {"duration_s": duration_s},
        (event_id,),
        {"number": number},
    )


def streak_ending(days: Set[dt.date], day: dt.date) -> int:
    n = 0
    while day - dt.timedelta(days=n) in days:
        n += 1
    return n


def forward_to_rival(days: Set[dt.date], rules: WarningRules) -> list[Signal]:
    """Each day on which a run of consecutive forwarding days reaches the threshold.

    A function of the set of days alone, so arrival order does not change the answer.
    """
    n = rules.forward_consecutive_days
    return [
        Signal(
            Code.FORWARD_TO_RIVAL,
            d.isoformat(),
            f"calls forwarded to rival numbers on {n} consecutive days",
            {"days": n},
        )
        for d in sorted(days)
        if streak_ending(days, d) == n
    ]


def keep_number_suspension(event_id: str, at: dt.datetime, rules: WarningRules) -> Signal:
    return Signal(
        Code.KEEP_NUMBER_SUSPENSION,
        local_day(at, rules).isoformat(),
        "keep-number suspension",
        event_ids=(event_id,),
    )


def port_out_query(event_id: str, kind: str, at: dt.datetime, rules: WarningRules) -> Signal:
    return Signal(
        Code.PORT_OUT_QUERY,
        local_day(at, rules).isoformat(),
        f"port-out {kind.lower().replace('_', ' ')}",
        event_ids=(event_id,),
        notes={"kind": kind},
    )


def payment_due_soon(
    period: str, due_on: dt.date, paid: bool, today: dt.date, rules: WarningRules
) -> Signal | None:
    """At a daily close: an unpaid bill due within N days (period: the bill's)."""
    days_left = (due_on - today).days
    if paid or not 0 <= days_left <= rules.payment_due_soon_days:
        return None
    return Signal(
        Code.PAYMENT_DUE_SOON,
        period,
        f"bill due in {days_left} day(s)",
        {"days_left": days_left},
        notes={"due_on": due_on.isoformat()},
    )


def overdue(
    period: str,
    due_on: dt.date,
    paid_at: dt.datetime | None,
    now: dt.datetime,
    rules: WarningRules,
) -> Signal | None:
    """The bill was not paid before the end of its due day (local)."""
    deadline = day_start(due_on + dt.timedelta(days=1), rules)
    if now < deadline or (paid_at is not None and paid_at < deadline):
        return None
    return Signal(
        Code.OVERDUE,
        period,
        f"bill of {period} unpaid after {due_on}",
        notes={"due_on": due_on.isoformat()},
    )


def previous_periods(period: str, n: int) -> list[str]:
    y, m = int(period[:4]), int(period[5:7])
    out = []
    for _ in range(n):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        out.append(f"{y:04d}-{m:02d}")
    return out


def zero_spend(period: str, amount_fen: int) -> Signal | None:
    if amount_fen != 0:
        return None
    return Signal(Code.ZERO_SPEND, period, "no billed consumption", {"amount_fen": 0})


def _drop(history: Mapping[str, int], period: str) -> tuple[int, int] | None:
    """(current, sum of the 3 previous) when all 3 previous months are known."""
    prev = previous_periods(period, 3)
    if period not in history or any(p not in history for p in prev):
        return None
    return history[period], sum(history[p] for p in prev)


def spend_drop(amounts: Mapping[str, int], period: str, rules: WarningRules) -> Signal | None:
    """Spend below P% of the 3 previous months' mean, only if that mean >= the minimum."""
    got = _drop(amounts, period)
    if got is None:
        return None
    current, total = got
    # current < P% * total/3  and  total/3 >= min, in integers
    if (
        total < 3 * rules.spend_drop_min_mean_fen
        or current * 300 >= rules.spend_drop_percent * total
    ):
        return None
    return Signal(
        Code.SPEND_DROP,
        period,
        "spend dropped",
        {"amount_fen": current, "previous_3_months_fen": total},
    )


def data_drop(volumes: Mapping[str, int], period: str, rules: WarningRules) -> Signal | None:
    got = _drop(volumes, period)
    if got is None:
        return None
    current, total = got
    if total == 0 or current * 300 >= rules.data_drop_percent * total:
        return None
    return Signal(
        Code.DATA_DROP,
        period,
        "data volume dropped",
        {"volume_bytes": current, "previous_3_months_bytes": total},
    )


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def contract_expiry(
    contract_id: str, ends_on: dt.date, close_day: dt.date, rules: WarningRules
) -> Signal | None:
    """At a monthly close: the contract ends within N months (service-marketing category)."""
    if not close_day <= ends_on <= add_months(close_day, rules.contract_expiry_months):
        return None
    return Signal(
        Code.CONTRACT_EXPIRY,
        f"{close_day.year:04d}-{close_day.month:02d}",
        f"contract {contract_id} ends on {ends_on}",
        notes={"contract_id": contract_id, "ends_on": ends_on.isoformat()},
    )


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"
