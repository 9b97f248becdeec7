"""Local midnights on the operator's calendar, for closes driven by an event-time watermark."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MAX_SPAN_DAYS = 400  # a watermark leap closes at most about a year back


def midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Local midnight at the start of `day`, as a UTC instant."""
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


class Midnights:
    """The local midnights a watermark crosses. Remembers the local day it last ended in, so
    the common case (no midnight crossed) costs two comparisons: it runs on every event. And
    the last interval that crossed one, with its answer: a close fires for every customer of a
    partition with the same interval (thousands of times in a row at a month's end), and the
    calendar arithmetic was a quarter of such a close's cost."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._day: tuple[int, int] | None = None  # [start, end) of the last local day seen
        self._last: tuple[int, int, tuple[dt.datetime, ...]] | None = None

    def crossed(self, after: int, upto: int) -> list[dt.datetime]:
        """Local midnights (UTC instants) in the interval (after, upto] of epoch seconds."""
        if upto <= after:
            return []
        day = self._day
        if day is not None and day[0] <= after and upto < day[1]:
            return []
        last = self._last
        if last is not None and last[0] == after and last[1] == upto:
            return list(last[2])
        key = (after, upto)
        after = max(after, upto - MAX_SPAN_DAYS * 86400)
        d = dt.datetime.fromtimestamp(after, self.zone).date() + dt.timedelta(days=1)
        out = []
        while (m := midnight(d, self.zone)).timestamp() <= upto:
            out.append(m)
            d += dt.timedelta(days=1)
        today = dt.datetime.fromtimestamp(upto, self.zone).date()
        self._day = (
            int(midnight(today, self.zone).timestamp()),
            int(midnight(today + dt.timedelta(days=1), self.zone).timestamp()),
        )
        self._last = (*key, tuple(out))
        return out
