"""Month-by-month counts: a partition's months in its state, each written whole; ranges."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from hvc.common import monthly
from hvc.common.streams import Context, MemoryPartition, Record, View, _coalesced

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_counts_accumulate_per_partition_and_month_and_each_write_is_whole():
    part = MemoryPartition()
    ctx = Context(part, Record("t", 7, 1, 0, None), 0)
    monthly.add(ctx, "m", "2025-03", {"code:A": 1, "tier:GOLD": 1})
    monthly.add(ctx, "m", "2025-03", {"code:A": 1, "code:B": 2})
    monthly.add(ctx, "m", "2025-04", {"code:A": 1})
    assert [(v.id, monthly.counts_of(v.doc)) for v in ctx.views] == [
        ("2025-03 007", {"code:A": 1, "tier:GOLD": 1}),
        ("2025-03 007", {"code:A": 2, "tier:GOLD": 1, "code:B": 2}),
        ("2025-04 007", {"code:A": 1}),
    ]
    # The view writer keeps the last whole write of each document.
    assert [monthly.counts_of(v.doc) for v in _coalesced(ctx.views)] == [
        {"code:A": 2, "tier:GOLD": 1, "code:B": 2},
        {"code:A": 1},
    ]
    assert monthly.split(monthly.counts_of(ctx.views[1].doc), "code") == {"A": 2, "B": 2}


def test_coalescing_keeps_what_a_later_write_does_not_replace():
    views = [
        View("c", "a", {"n": 1}, "insert"),
        View("c", "b", {"n": 1}),
        View("c", "a", {"n": 2}),  # replaces the insert before it
        View("c", "a", {"x": 1}, "set"),  # after the replace: kept
        View("c", "b", None),  # removes b: the replace before it is moot
        View("c", "b", {"n": 3}, "insert"),  # after the removal: kept
    ]
    kept = _coalesced(views)
    assert [(v.id, v.doc, v.mode) for v in kept] == [
        ("a", {"n": 2}, "replace"),
        ("a", {"x": 1}, "set"),
        ("b", None, "replace"),
        ("b", {"n": 3}, "insert"),
    ]


def test_a_month_is_the_operators_and_ranges_are_checked():
    late = dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)  # 1 April, 00:30 in Shanghai
    assert monthly.month_of(late, SHANGHAI) == "2025-04"
    assert monthly.months("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    for bad in (("2025-02", "2025-01"), ("2025-13", "2025-14"), ("2010-01", "2025-01")):
        with pytest.raises(ValueError):
            monthly.months(*bad)
