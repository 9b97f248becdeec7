"""The working calendar (DOMAIN §6): the shipped Mainland China data for 2025-2027 as the
State Council's notices set it, and what a replacement file must satisfy."""

from __future__ import annotations

import datetime as dt

import pytest

from hvc.common import workcal

CAL = workcal.load(workcal.SHIPPED)
D = dt.date


def test_the_notices_holidays_and_adjusted_working_days():
    # 2025 (the notice of 12 November 2024): Spring Festival 28 Jan - 4 Feb, Sunday 26 Jan worked.
    assert not CAL.is_working_day(D(2025, 1, 28)) and not CAL.is_working_day(D(2025, 2, 4))
    assert CAL.is_working_day(D(2025, 1, 26)) and CAL.is_working_day(D(2025, 2, 8))
    assert not CAL.is_working_day(D(2025, 10, 8))  # National Day with Mid-Autumn: 8 days
    assert CAL.is_working_day(D(2025, 10, 11))
    # 2026: Spring Festival 15-23 Feb (9 days), Saturdays 14 and 28 Feb worked.
    assert [CAL.is_working_day(D(2026, 2, d)) for d in (13, 14, 15, 23, 24, 28)] == [
        True, True, False, False, True, True,
    ]  # fmt: skip
    assert not CAL.is_working_day(D(2026, 9, 25))  # Mid-Autumn, a Friday
    assert CAL.is_working_day(D(2026, 9, 20)) and CAL.is_working_day(D(2026, 10, 10))
    # An ordinary week: weekdays worked, the weekend not.
    assert CAL.is_working_day(D(2026, 3, 11)) and not CAL.is_working_day(D(2026, 3, 14))
    counts = {y: (len(v.holidays), len(v.workdays)) for y, v in CAL.years.items()}
    assert counts == {2025: (28, 5), 2026: (33, 6), 2027: (13, 0)}


def test_2027_is_provisional_until_its_notice_replaces_it():
    """The statutory days only (Spring Festival from the eve, 5 February 2027), no bridging
    days: covers() says the operator has to replace it."""
    assert CAL.covers(D(2026, 6, 1)) and not CAL.covers(D(2027, 6, 1))
    assert not CAL.covers(D(2028, 1, 3))
    assert [d.isoformat() for d in CAL.years[2027].holidays if d.month == 2] == [
        "2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08",
    ]  # fmt: skip
    assert CAL.is_working_day(D(2028, 1, 3))  # beyond the data: plain weekdays


def test_a_replacement_is_validated():
    data = CAL.model_dump(mode="json")
    year = data["years"]["2026"]
    with pytest.raises(ValueError, match="not a weekend day"):
        workcal.WorkingCalendar.model_validate(
            {**data, "years": {"2026": {**year, "workdays": {"2026-03-11": "x"}}}}
        )
    with pytest.raises(ValueError, match="listed under"):
        workcal.WorkingCalendar.model_validate({**data, "years": {"2025": year}})
    with pytest.raises(ValueError, match="both a holiday and a working day"):
        workcal.WorkingCalendar.model_validate(
            {**data, "years": {"2026": {**year, "holidays": {"2026-02-14": "x"}}}}
        )


def test_an_unreadable_file_says_which(tmp_path):
    bad = tmp_path / "cal.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match=r"invalid working calendar .*cal\.json"):
        workcal.load(bad)
