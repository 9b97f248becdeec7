"""Local midnights a watermark crosses, on the Shanghai calendar."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hvc.common.calendar import MAX_SPAN_DAYS, Midnights

ZONE = ZoneInfo("Asia/Shanghai")


def ts(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp())


def test_midnights_in_the_half_open_interval():
    m = Midnights(ZONE)
    assert m.crossed(ts("2025-03-01T15:00:00"), ts("2025-03-01T15:59:59")) == []
    assert m.crossed(ts("2025-03-01T15:59:59"), ts("2025-03-01T16:00:00")) == [
        dt.datetime(2025, 3, 1, 16, tzinfo=dt.UTC)
    ]
    # The boundary itself is not crossed again from it.
    assert m.crossed(ts("2025-03-01T16:00:00"), ts("2025-03-02T15:59:59")) == []
    got = m.crossed(ts("2025-03-01T16:00:00"), ts("2025-03-04T16:00:00"))
    assert [x.day for x in got] == [2, 3, 4]
    assert m.crossed(5, 5) == [] and m.crossed(6, 5) == []


def test_a_leap_closes_at_most_the_last_400_days():
    got = Midnights(ZONE).crossed(ts("2020-01-01T00:00:00"), ts("2025-01-01T00:00:00"))
    assert len(got) == MAX_SPAN_DAYS
    assert got[-1] == dt.datetime(2024, 12, 31, 16, tzinfo=dt.UTC)


def test_the_same_interval_asked_again_gets_the_same_midnights_in_a_list_of_its_own():
    # A close asks with one interval for every customer it fires for: the answer is kept, and
    # each caller gets its own list (one a caller changed does not change the next answer).
    m = Midnights(ZONE)
    before, after = ts("2025-03-31T15:59:59"), ts("2025-03-31T16:00:00")
    first = m.crossed(before, after)
    first.append(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert m.crossed(before, after) == [dt.datetime(2025, 3, 31, 16, tzinfo=dt.UTC)]
    # Another interval is worked out again, and the one before it is still answered right.
    assert m.crossed(before - 86400, after - 86400) == [dt.datetime(2025, 3, 30, 16, tzinfo=dt.UTC)]
    assert m.crossed(before, after) == [dt.datetime(2025, 3, 31, 16, tzinfo=dt.UTC)]
