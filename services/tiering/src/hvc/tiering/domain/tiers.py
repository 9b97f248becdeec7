"""The tier ladder and the sources a tier can come from."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


class Tier(IntEnum):
    """Ordered lowest to highest, so max() is the better tier."""

    NONE = 0
    VIP = 1
    SILVER = 2
    GOLD = 3
    PLATINUM = 4
    DIAMOND = 5

    def above(self) -> Tier | None:
        return Tier(self + 1) if self < Tier.DIAMOND else None


class Source(StrEnum):
    ANNUAL = "ANNUAL"
    PLAN = "PLAN"
    GROUP_KEY_PERSON = "GROUP_KEY_PERSON"
    MANUAL = "MANUAL"


# When two components give the same tier, the first of these is named as the source.
SOURCE_PRIORITY = (Source.ANNUAL, Source.PLAN, Source.GROUP_KEY_PERSON, Source.MANUAL)


def _tier_by_name(v: Any) -> Tier:
    if isinstance(v, Tier):
        return v
    if isinstance(v, str) and v in Tier.__members__:
        return Tier[v]
    raise ValueError(f"unknown tier {v!r}; one of {', '.join(Tier.__members__)}")


# A Tier read from and written to data files by name ("GOLD"), never by number.
TierName = Annotated[Tier, BeforeValidator(_tier_by_name), PlainSerializer(lambda t: t.name)]
