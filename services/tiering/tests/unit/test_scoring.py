"""Annual scoring at every boundary: thresholds, tenure (Asia/Shanghai, leap days), spend."""

from __future__ import annotations

import datetime as dt

import pytest

from hvc.tiering.domain.model import Bill, CustomerFacts, Profile
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.domain.scoring import (
    annual_valid_from,
    consumption_points,
    evaluate_annual,
    local_date,
    plan_tier,
    tenure_points,
    tenure_years,
    tier_for_score,
)
from hvc.tiering.domain.tiers import Tier

RULES = load_rulebook([DEFAULT_RULESETS]).rulesets[0]
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def facts(joined: dt.date, bills: dict[str, tuple[int, int]] | None = None) -> CustomerFacts:
    f = CustomerFacts("c1", profiles=[Profile("p1", T0, joined, None, False)])
    for period, (amount, countable) in (bills or {}).items():
        f.bills[f"b-{period}"] = Bill(f"b-{period}", period, amount, countable, T0)
    return f


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (3999, Tier.PLATINUM),
        (4000, Tier.DIAMOND),
        (1999, Tier.GOLD),
        (2000, Tier.PLATINUM),
        (999, Tier.SILVER),
        (1000, Tier.GOLD),
        (499, Tier.VIP),
        (500, Tier.SILVER),
        (199, Tier.NONE),
        (200, Tier.VIP),
        (0, Tier.NONE),
    ],
)
def test_score_thresholds_at_each_boundary(score, tier):
    assert tier_for_score(score, RULES) is tier


@pytest.mark.parametrize(
    ("joined", "as_of", "years", "points"),
    [
        (dt.date(2024, 1, 15), dt.date(2025, 1, 14), 0, 0),
        (dt.date(2024, 1, 15), dt.date(2025, 1, 15), 1, 100),
        (dt.date(2022, 1, 15), dt.date(2025, 1, 14), 2, 100),
        (dt.date(2022, 1, 15), dt.date(2025, 1, 15), 3, 200),
        (dt.date(2015, 1, 15), dt.date(2025, 1, 14), 9, 200),
        (dt.date(2015, 1, 15), dt.date(2025, 1, 15), 10, 300),
    ],
)
def test_tenure_of_exactly_1_3_and_10_years(joined, as_of, years, points):
    assert tenure_years(joined, as_of, RULES) == years
    assert tenure_points(years, RULES) == points


def test_leap_day_join_has_its_anniversary_on_28_february_in_common_years():
    joined = dt.date(2016, 2, 29)
    assert tenure_years(joined, dt.date(2017, 2, 27), RULES) == 0
    assert tenure_years(joined, dt.date(2017, 2, 28), RULES) == 1
    assert tenure_years(joined, dt.date(2019, 2, 28), RULES) == 3
    assert tenure_years(joined, dt.date(2020, 2, 28), RULES) == 3  # 2020 is a leap year
    assert tenure_years(joined, dt.date(2020, 2, 29), RULES) == 4
    assert tenure_years(joined, dt.date(2026, 2, 28), RULES) == 10


def test_leap_day_anniversary_on_1_march_when_the_rule_set_says_so():
    rules = RULES.model_copy(update={"leap_day_anniversary": "MAR_1"})
    assert tenure_years(dt.date(2016, 2, 29), dt.date(2017, 2, 28), rules) == 0
    assert tenure_years(dt.date(2016, 2, 29), dt.date(2017, 3, 1), rules) == 1


def test_tenure_is_counted_on_the_shanghai_calendar():
    # 2025-01-14T16:30Z is already 15 January in Shanghai: the first anniversary.
    instant = dt.datetime(2025, 1, 14, 16, 30, tzinfo=dt.UTC)
    as_of = local_date(instant, RULES)
    assert as_of == dt.date(2025, 1, 15)
    assert tenure_years(dt.date(2024, 1, 15), as_of, RULES) == 1
    assert local_date(dt.datetime(2025, 1, 14, 15, 59, tzinfo=dt.UTC), RULES) == dt.date(
        2025, 1, 14
    )


def test_only_countable_spend_of_the_year_counts_and_is_floored_to_yuan():
    f = facts(
        dt.date(2010, 1, 1),
        {"2025-01": (500_000, 100_050), "2025-12": (1000, 99), "2024-12": (900_000, 900_000)},
    )
    # 1000.50 + 0.99 yuan countable in 2025 -> 1001 points; amount and 2024 do not count.
    assert consumption_points(f, 2025) == 1001


def test_annual_result_combines_points_and_is_valid_from_1_february_local():
    f = facts(dt.date(2015, 1, 1), {"2025-03": (0, 370_000)})
    r = evaluate_annual(f, 2025, dt.date(2026, 1, 15), RULES)
    assert r is not None
    assert (r.consumption_points, r.tenure_points, r.score) == (3700, 300, 4000)
    assert r.tier is Tier.DIAMOND
    assert r.ruleset_version == "2025.1"
    assert r.valid_from == dt.datetime(2026, 1, 31, 16, 0, tzinfo=dt.UTC)  # 00:00 in Shanghai
    assert r.valid_from == annual_valid_from(2025, RULES)


def test_one_point_short_of_diamond_is_platinum():
    f = facts(dt.date(2015, 1, 1), {"2025-03": (0, 369_999)})
    r = evaluate_annual(f, 2025, dt.date(2026, 1, 15), RULES)
    assert r is not None
    assert (r.score, r.tier) == (3999, Tier.PLATINUM)


def test_customers_under_one_year_are_not_assessed():
    f = facts(dt.date(2025, 1, 16), {"2025-03": (0, 900_000)})
    assert evaluate_annual(f, 2025, dt.date(2026, 1, 15), RULES) is None
    assert evaluate_annual(f, 2025, dt.date(2026, 1, 16), RULES) is not None


def test_customer_without_a_profile_is_not_assessed():
    assert evaluate_annual(CustomerFacts("c"), 2025, dt.date(2026, 1, 15), RULES) is None


@pytest.mark.parametrize(
    ("fee", "gotone", "tier"),
    [
        (58_800, True, Tier.DIAMOND),
        (58_799, True, Tier.PLATINUM),
        (38_800, True, Tier.PLATINUM),
        (28_800, True, Tier.GOLD),
        (18_800, True, Tier.SILVER),
        (18_799, True, Tier.VIP),
        (0, True, Tier.VIP),
        (99_900, False, Tier.NONE),
    ],
)
def test_plan_fee_mapping(fee, gotone, tier):
    assert plan_tier(fee, gotone, RULES) is tier
