"""What the benefits service knows of each customer, mirrored from its keyed streams'
state: tier timeline, birthday, credit-rating restoration hours, birthday usage. Process-local:
it holds the customers of the partitions this process owns."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from hvc.benefits.domain.rules import tier_at


@dataclass
class Directory:
    timelines: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    birthdays: dict[str, tuple[int, int]] = field(default_factory=dict)  # (month, day)
    credit_hours: dict[str, int] = field(default_factory=dict)
    # customer -> (local date ISO, midnight epoch s, end-of-day notice closed too, the tier
    # the close saw or None if not recorded) of the last birthday whose close was evaluated
    birthday_closed: dict[str, tuple[str, int, bool, str | None]] = field(default_factory=dict)
    # customer -> (episode id, suspended at epoch s, the tier its suspension saw) of the last
    # arrears suspension episode
    episodes: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    # (customer, local date ISO) -> waivable usage charged that day, in fen
    birthday_usage: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def tier(self, customer_id: str, at: dt.datetime) -> tuple[str, int]:
        return tier_at(self.timelines.get(customer_id, ()), int(at.timestamp()))
