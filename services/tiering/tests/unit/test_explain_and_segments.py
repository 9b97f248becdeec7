"""Explanations and segmentations are derived from facts alone."""

from __future__ import annotations

import datetime as dt

from hvc.tiering.domain.explain import explain
from hvc.tiering.domain.model import (
    AnnualResult,
    Bill,
    CustomerFacts,
    Override,
    Payment,
    PlanVersion,
    Profile,
)
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.domain.segmentation import (
    arpu_band,
    arpu_fen,
    high_end,
    periods_back,
    rfm,
    vip_by_arpu,
)
from hvc.tiering.domain.tiers import Tier

BOOK = load_rulebook([DEFAULT_RULESETS])
RULES = BOOK.rulesets[0]
SEG = RULES.segmentation
UTC = dt.UTC
T = dt.datetime(2025, 1, 1, tzinfo=UTC)


def with_bills(cid: str, spend: dict[str, int], joined=dt.date(2015, 1, 1)) -> CustomerFacts:
    f = CustomerFacts(cid, profiles=[Profile("p", T, joined, None, False)])
    for period, fen in spend.items():
        f.bills[period] = Bill(period, period, fen, fen, T)
    return f


def test_explanation_of_a_customer_under_one_year():
    f = with_bills("c", {}, joined=dt.date(2025, 6, 1))
    e = explain(f, {}, BOOK, dt.datetime(2026, 3, 1, tzinfo=UTC))
    assert e["effective_tier"] == "NONE"
    assert "not assessed: tenure 0 year(s), assessment needs 1" in e["reasons"]
    assert "no GoTone plan" in e["reasons"]
    # The same reasons as codes, in the same order, with their values.
    assert e["reason_codes"] == [
        {"code": "TENURE_TOO_SHORT", "years": "0", "needed": "1"},
        {"code": "NO_GOTONE_PLAN"},
    ]
    assert len(e["reason_codes"]) == len(e["reasons"])


def test_explanation_names_an_expired_manual_floor():
    f = with_bills("c", {})
    f.overrides.append(
        Override("o", Tier.GOLD, T, dt.datetime(2025, 2, 1, tzinfo=UTC), "goodwill", "sup")
    )
    e = explain(f, {}, BOOK, dt.datetime(2025, 3, 1, tzinfo=UTC))
    assert any(r.startswith("manual floor GOLD expired") for r in e["reasons"])
    assert {"code": "OVERRIDE_EXPIRED", "tier": "GOLD", "at": "2025-02-01T00:00:00+00:00"} in e[
        "reason_codes"
    ]
    during = explain(f, {}, BOOK, dt.datetime(2025, 1, 15, tzinfo=UTC))
    assert (during["effective_tier"], during["source"]) == ("GOLD", "MANUAL")


def test_explanation_of_a_diamond_has_no_next_tier():
    f = with_bills("c", {})
    f.annual["2025"] = AnnualResult(
        2025,
        dt.date(2026, 1, 1),
        "2025.1",
        5000,
        300,
        11,
        5300,
        Tier.DIAMOND,
        dt.datetime(2026, 1, 31, 16, tzinfo=UTC),
    )
    e = explain(f, {}, BOOK, dt.datetime(2026, 3, 1, tzinfo=UTC))
    assert e["annual"]["next_tier"] is None and e["annual"]["points_to_next_tier"] == 0
    assert e["reasons"][0].startswith("DIAMOND from ANNUAL")
    first = e["reason_codes"][0]
    assert (first["code"], first["tier"], first["source"]) == ("FROM_SOURCE", "DIAMOND", "ANNUAL")


def test_periods_back_cross_a_year():
    assert periods_back("2025-02", 3) == ["2024-12", "2025-01", "2025-02"]


def test_high_end_needs_three_consecutive_months_at_the_threshold():
    at = {"2025-04": 20_000, "2025-05": 20_000, "2025-06": 20_000}
    assert high_end(with_bills("a", at), "2025-06", RULES) == "HIGH_END"
    short = dict(at, **{"2025-05": 19_999})
    # The streak is broken, and April already crossed the threshold: neither flag.
    assert high_end(with_bills("b", short), "2025-06", RULES) is None


def test_quasi_high_end_is_the_first_month_over_the_threshold():
    first = {"2025-04": 5_000, "2025-05": 6_000, "2025-06": 25_000}
    assert high_end(with_bills("q", first), "2025-06", RULES) == "QUASI_HIGH_END"
    before = {"2025-01": 30_000, "2025-05": 6_000, "2025-06": 25_000}
    assert high_end(with_bills("r", before), "2025-06", RULES) is None


def test_a_new_customer_on_a_high_plan_is_high_end():
    f = with_bills("n", {}, joined=dt.date(2025, 5, 10))
    f.plans.append(PlanVersion("p", "P", 28_800, True, T, None, T))
    assert high_end(f, "2025-06", RULES) == "HIGH_END"


def test_arpu_bands_at_their_bounds():
    assert arpu_band(11_999, SEG) == "<120"
    assert arpu_band(12_000, SEG) == "120-200"
    assert arpu_band(49_999, SEG) == "200-500"
    assert arpu_band(50_000, SEG) == ">=500"
    f = with_bills("a", {"2025-04": 10_000, "2025-06": 20_001})
    assert arpu_fen(f, "2025-06") == 15_000  # mean of the billed months in the window


def test_vip_by_arpu_older_scheme():
    def year(fen: int) -> CustomerFacts:
        return with_bills("v", {"2025-01": fen})

    assert vip_by_arpu(year(300_001), 2025, SEG) == "DIAMOND"
    assert vip_by_arpu(year(300_000), 2025, SEG) == "GOLD"
    assert vip_by_arpu(year(66_600), 2025, SEG) == "SILVER"
    assert vip_by_arpu(year(66_599), 2025, SEG) is None


def test_rfm_scores():
    f = with_bills("r", {})
    as_of = dt.datetime(2025, 12, 31, tzinfo=UTC)
    for m in range(1, 13):
        f.payments.append(Payment(f"p{m}", dt.datetime(2025, m, 20, tzinfo=UTC), 60_000))
    assert rfm(f, as_of, SEG) == (5, 5, 5)
    assert rfm(CustomerFacts("none"), as_of, SEG) == (1, 1, 1)


def test_the_monthly_distribution_is_the_running_sum_of_the_flows():
    from hvc.tiering.reports import by_month

    flows = {
        "2024-12": {"in:GOLD": 2, "out:NONE": 2, "move:NONE>GOLD": 2, "source:PLAN": 2},
        "2025-02": {"in:DIAMOND": 1, "out:GOLD": 1, "move:GOLD>DIAMOND": 1, "source:ANNUAL": 1},
    }
    got = by_month(flows, "2025-01", "2025-03")
    assert [i["month"] for i in got["items"]] == ["2025-01", "2025-02", "2025-03"]
    jan, feb, mar = got["items"]
    assert jan["distribution"]["GOLD"] == 2 and jan["decisions"] == 0  # carried from December
    assert (feb["distribution"]["GOLD"], feb["distribution"]["DIAMOND"]) == (1, 1)
    assert feb["moves"] == {"GOLD>DIAMOND": 1} and feb["by_source"] == {"ANNUAL": 1}
    assert mar["distribution"] == feb["distribution"]
