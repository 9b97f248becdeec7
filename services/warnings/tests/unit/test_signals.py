"""Every signal at its boundary, on the Shanghai calendar (DOMAIN §2)."""

from __future__ import annotations

import datetime as dt

import pytest

from hvc.warnings.domain.rules import DEFAULT_RULES, Category, Code, WarningRules, load_rules
from hvc.warnings.domain.signals import (
    add_months,
    contract_expiry,
    data_drop,
    forward_to_rival,
    is_rival_mobile,
    local_day,
    normalize,
    overdue,
    payment_due_soon,
    port_out_query,
    rival_service_call,
    spend_drop,
    zero_spend,
)

RULES = load_rules(DEFAULT_RULES)
UTC = dt.UTC
T = dt.datetime(2025, 3, 1, 4, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "fires"), [(60, False), (61, True)])
def test_rival_service_call_60_versus_61_seconds(seconds, fires):
    s = rival_service_call("e1", "10010", seconds, T, RULES)
    assert (s is not None) is fires
    if s:
        assert (s.code, s.period, s.event_ids) == (Code.RIVAL_SERVICE_CALL, "2025-03-01", ("e1",))


def test_rival_service_numbers_are_recognised_in_any_form_and_others_are_not():
    assert rival_service_call("e", "+86 10000", 90, T, RULES) is None  # not a mobile: kept as is
    assert rival_service_call("e", "10000", 90, T, RULES) is not None
    assert rival_service_call("e", "10086", 900, T, RULES) is None
    assert normalize("+86 133-1234-5678") == "13312345678"
    assert is_rival_mobile("+8618912345678", RULES) and not is_rival_mobile("13812345678", RULES)


def test_a_call_at_23_59_local_belongs_to_that_day_not_the_utc_one():
    late = dt.datetime(2025, 3, 1, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    after = dt.datetime(2025, 3, 1, 16, 1, tzinfo=UTC)  # 00:01 on the 2nd
    assert local_day(late, RULES) == dt.date(2025, 3, 1)
    assert local_day(after, RULES) == dt.date(2025, 3, 2)
    assert rival_service_call("e", "10099", 61, after, RULES).period == "2025-03-02"


def days(*iso: str) -> set[dt.date]:
    return {dt.date.fromisoformat(d) for d in iso}


def test_forwarding_on_2_days_is_not_a_warning_3_is():
    assert forward_to_rival(days("2025-03-01", "2025-03-02"), RULES) == []
    [s] = forward_to_rival(days("2025-03-01", "2025-03-02", "2025-03-03"), RULES)
    assert (s.code, s.period) == (Code.FORWARD_TO_RIVAL, "2025-03-03")


def test_forwarding_across_midnight_counts_two_local_days():
    calls = [
        dt.datetime(2025, 3, 1, 15, 59, tzinfo=UTC),
        dt.datetime(2025, 3, 1, 16, 1, tzinfo=UTC),
    ]
    d = {local_day(c, RULES) for c in calls}
    assert d == days("2025-03-01", "2025-03-02")
    assert forward_to_rival(d, RULES) == []
    assert forward_to_rival(d | days("2025-03-03"), RULES)[0].period == "2025-03-03"


def test_forwarding_streak_across_a_month_end_and_a_gap():
    assert [
        s.period for s in forward_to_rival(days("2025-01-30", "2025-01-31", "2025-02-01"), RULES)
    ] == ["2025-02-01"]
    assert forward_to_rival(days("2025-01-30", "2025-02-01", "2025-02-02"), RULES) == []
    # A longer run warns once, on the day it reaches the threshold; arrival order is irrelevant.
    run = days(*(f"2025-02-{d:02d}" for d in range(1, 8)))
    assert [s.period for s in forward_to_rival(run, RULES)] == ["2025-02-03"]


def test_keep_number_and_port_out_are_daily():
    s = port_out_query("e9", "ELIGIBILITY_QUERY", T, RULES)
    assert (s.code, s.period, s.event_ids) == (Code.PORT_OUT_QUERY, "2025-03-01", ("e9",))


@pytest.mark.parametrize(
    ("paid_at", "fires"),
    [
        (dt.datetime(2025, 3, 20, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 on the due day
        (dt.datetime(2025, 3, 20, 16, 0, 1, tzinfo=UTC), True),  # 00:00:01 the day after
        (None, True),
    ],
)
def test_a_bill_paid_one_second_before_and_after_its_due_date(paid_at, fires):
    now = dt.datetime(2025, 3, 21, 1, tzinfo=UTC)
    s = overdue("2025-02", dt.date(2025, 3, 20), paid_at, now, RULES)
    assert (s is not None) is fires
    if s:
        assert (s.code, s.period) == (Code.OVERDUE, "2025-02")


def test_overdue_is_not_decided_before_the_due_day_ends():
    before = dt.datetime(2025, 3, 20, 15, 59, 59, tzinfo=UTC)
    assert overdue("2025-02", dt.date(2025, 3, 20), None, before, RULES) is None


@pytest.mark.parametrize(
    ("today", "fires"),
    [("2025-03-16", False), ("2025-03-17", True), ("2025-03-20", True), ("2025-03-21", False)],
)
def test_payment_due_soon_within_3_days(today, fires):
    s = payment_due_soon(
        "2025-02", dt.date(2025, 3, 20), False, dt.date.fromisoformat(today), RULES
    )
    assert (s is not None) is fires
    assert (
        payment_due_soon("2025-02", dt.date(2025, 3, 20), True, dt.date(2025, 3, 18), RULES) is None
    )


def test_zero_spend():
    assert zero_spend("2025-02", 0).code is Code.ZERO_SPEND
    assert zero_spend("2025-02", 1) is None


def test_spend_drop_when_the_3_month_mean_is_just_under_and_just_over_50_yuan():
    under = {"2024-11": 4_999, "2024-12": 5_000, "2025-01": 5_000, "2025-02": 100}  # mean 49.997
    over = {"2024-11": 5_000, "2024-12": 5_000, "2025-01": 5_001, "2025-02": 100}  # mean 50.003
    assert spend_drop(under, "2025-02", RULES) is None
    s = spend_drop(over, "2025-02", RULES)
    assert s is not None and s.figures == {"amount_fen": 100, "previous_3_months_fen": 15_001}


def test_spend_drop_threshold_is_half_the_mean():
    at_half = {"2024-11": 6_000, "2024-12": 6_000, "2025-01": 6_000, "2025-02": 3_000}
    assert spend_drop(at_half, "2025-02", RULES) is None  # 50% is not below 50%
    assert spend_drop({**at_half, "2025-02": 2_999}, "2025-02", RULES) is not None
    assert spend_drop({"2025-01": 9_000, "2025-02": 0}, "2025-02", RULES) is None  # no history


def test_data_drop():
    v = {"2024-11": 900, "2024-12": 900, "2025-01": 900, "2025-02": 449}
    assert data_drop(v, "2025-02", RULES).code is Code.DATA_DROP
    assert data_drop({**v, "2025-02": 450}, "2025-02", RULES) is None
    assert (
        data_drop({"2024-11": 0, "2024-12": 0, "2025-01": 0, "2025-02": 0}, "2025-02", RULES)
        is None
    )


def test_contract_expiry_within_3_months_at_the_monthly_close():
    close = dt.date(2025, 3, 1)
    assert contract_expiry("K", dt.date(2025, 6, 1), close, RULES).period == "2025-03"
    assert contract_expiry("K", dt.date(2025, 6, 2), close, RULES) is None
    assert contract_expiry("K", dt.date(2025, 2, 28), close, RULES) is None
    assert add_months(dt.date(2025, 11, 30), 3) == dt.date(2026, 2, 28)


def test_rules_are_validated():
    data = RULES.model_dump(mode="json")
    with pytest.raises(ValueError, match="levels must name every code"):
        WarningRules.model_validate({**data, "levels": {"OVERDUE": 2}})
    with pytest.raises(ValueError, match="categories must name every code"):
        WarningRules.model_validate({**data, "categories": {"OVERDUE": "CARE"}})
    with pytest.raises(ValueError, match="categories"):
        WarningRules.model_validate({**data, "categories": {c: "SALES" for c in Code}})


def test_every_warning_has_its_category_care_but_contract_expiry():
    """DOMAIN §2/§6: care (客户关怀类) for all but CONTRACT_EXPIRY (服务营销类); the shipped
    rule set says so, and a rule set without the map gets the same."""
    expected = {c: Category.CARE for c in Code} | {Code.CONTRACT_EXPIRY: Category.SERVICE_MARKETING}
    assert RULES.categories == expected
    data = RULES.model_dump(mode="json")
    del data["categories"]
    assert WarningRules.model_validate(data).categories == expected
    with pytest.raises(ValueError, match="digit strings"):
        WarningRules.model_validate({**data, "rival_service_numbers": ["10O10"]})
