"""The clock timers follow: the wall clock, or (demo, replays) the latest event time seen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass
class EventClock:
    wall: bool = True
    latest: dt.datetime | None = None

    def saw(self, at: dt.datetime) -> None:
        if self.latest is None or at > self.latest:
            self.latest = at

    def now(self) -> dt.datetime:
        if self.wall:
            return dt.datetime.now(dt.UTC)
        return self.latest or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
