"""The operator's working calendar (DOMAIN §6): public holidays and adjusted working days
(调休) by year, as data. Shipped: Mainland China 2025-2027 (`calendars/cn-mainland.json`);
the operator replaces it with its own file (a service setting names it). Wherever a target
counts working time, a day is worked when it is an adjusted working day, or one of the
working weekdays and not a holiday."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

SHIPPED = Path(__file__).resolve().parent / "calendars" / "cn-mainland.json"


class Year(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)  # the notice the dates come from
    provisional: bool = False  # statutory days only, until the year's notice is out
    holidays: dict[dt.date, str]  # day off -> the holiday's name
    workdays: dict[dt.date, str] = Field(default_factory=dict)  # weekend days worked


class WorkingCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    years: dict[int, Year]

    @model_validator(mode="after")
    def _consistent(self) -> WorkingCalendar:
        for year, y in self.years.items():
            for day in (*y.holidays, *y.workdays):
                if day.year != year:
                    raise ValueError(f"{day} is listed under {year}")
            both = set(y.holidays) & set(y.workdays)
            if both:
                raise ValueError(f"both a holiday and a working day: {sorted(both)}")
            for day in y.workdays:
                if day.isoweekday() < 6:
                    raise ValueError(f"adjusted working day {day} is not a weekend day")
        return self

    @property
    def holidays(self) -> tuple[dt.date, ...]:
        return tuple(sorted(d for y in self.years.values() for d in y.holidays))

    @property
    def workdays(self) -> tuple[dt.date, ...]:
        return tuple(sorted(d for y in self.years.values() for d in y.workdays))

    def covers(self, day: dt.date) -> bool:
        """Whether the calendar has the year of `day` from its notice (not provisional)."""
        y = self.years.get(day.year)
        return y is not None and not y.provisional

    def is_working_day(self, day: dt.date, weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)) -> bool:
        y = self.years.get(day.year)
        if y is not None and day in y.workdays:
            return True
        return day.isoweekday() in weekdays and (y is None or day not in y.holidays)


def load(path: Path) -> WorkingCalendar:
    try:
        return WorkingCalendar.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"invalid working calendar {path}: {exc}") from exc
