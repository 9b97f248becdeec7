"""Working time: 24x7, or business hours with holidays, on the operator's calendar."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from hvc.complaints.domain.policy import CalendarSpec

MAX_DAYS = 3660  # how far a due instant is searched for: ten years of working days


class Calendar:
    def __init__(self, spec: CalendarSpec, zone: ZoneInfo) -> None:
        self.spec, self.zone = spec, zone
        self.holidays, self.workdays = set(spec.holidays), set(spec.workdays)

    @property
    def always(self) -> bool:
        return self.spec.kind == "24x7"

    def _window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working window of a local day, as UTC instants, or None on a day off."""
        working = day in self.workdays or (
            day.isoweekday() in self.spec.weekdays and day not in self.holidays
        )
        if not working:
            return None
        start = dt.datetime.combine(day, self.spec.opens, self.zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day, self.spec.closes, self.zone).astimezone(dt.UTC)
        return start, end

    def working_seconds(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working time between two instants (0 if b <= a)."""
        if b <= a:
            return 0.0
        if self.always:
            return (b - a).total_seconds()
        total = 0.0
        day = a.astimezone(self.zone).date()
        last = b.astimezone(self.zone).date()
        while day <= last:
            w = self._window(day)
            if w is not None:
                lo, hi = max(a, w[0]), min(b, w[1])
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total

    def add(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant when `seconds` of working time have passed since `start`."""
        if self.always or seconds <= 0:
            return start + dt.timedelta(seconds=max(seconds, 0))
        left = seconds
        day = start.astimezone(self.zone).date()
        for _ in range(MAX_DAYS):
            w = self._window(day)
            if w is not None:
                lo = max(start, w[0])
                if w[1] > lo:
                    span = (w[1] - lo).total_seconds()
                    if span >= left:
                        return lo + dt.timedelta(seconds=left)
                    left -= span
            day += dt.timedelta(days=1)
        raise ValueError("no working time within ten years: check the calendar")


@lru_cache(maxsize=64)
def calendar_of(spec: CalendarSpec, zone: ZoneInfo) -> Calendar:
    """One Calendar per calendar spec (its sets are built once, not on every clock read)."""
    return Calendar(spec, zone)
