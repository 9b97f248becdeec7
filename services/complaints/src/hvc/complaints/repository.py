"""The complaints service's views, written by its pipeline in batches (hvc.complaints.pipeline);
the truth (each complaint's changes, milestones emitted, the customer's tier decisions) is the
pipeline's state, in the engine's store and its changelog.

- `complaints`: the latest view of each complaint, `_id` its id, for lists and reports;
- `outcomes`: each command of the HTTP side as the pipeline decided it, `_id` the command id
  (a transition_id): applied (with the complaint as it left it) or refused, and why.

And the rules of which tier a complaint takes (`Tier`, `tier_at`, `later`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.mongo import all_of, page

Doc = dict[str, Any]


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.complaints = db["complaints"]
        self.outcomes = db["outcomes"]

    async def ensure_indexes(self) -> None:
        await self.complaints.create_index([("customer_id", ASCENDING)])
        await self.complaints.create_index([("status", ASCENDING)])

    async def open_of_many(self, customer_ids: list[str]) -> list[Doc]:
        """The `open_complaints` documents of these customers (those with any open)."""
        if not customer_ids:
            return []
        return await all_of(self.db["open_complaints"].find({"_id": {"$in": customer_ids}}))

    async def open_of(self, customer_id: str) -> Doc | None:
        """The customer's complaints whose clocks run, by `_id` (pipeline.OPEN)."""
        return await self.db["open_complaints"].find_one({"_id": customer_id})

    async def view(self, complaint_id: str) -> Doc | None:
        return await self.complaints.find_one({"_id": complaint_id})

    async def views(self, query: Doc, limit: int, offset: int) -> tuple[list[Doc], int]:
        return await page(self.complaints, query, [("creationDate", DESCENDING)], limit, offset)

    async def all_views(self) -> list[Doc]:
        return await all_of(self.complaints.find({}))

    async def outcome(self, command_id: str) -> Doc | None:
        return await self.outcomes.find_one({"_id": command_id})


@dataclass(frozen=True)
class Tier:
    tier: str
    effective_from: dt.datetime
    known_ms: int  # when the decision's cause was published (0: before anything here)


def tier_at(tiers: list[Tier], at: dt.datetime, known_by: int) -> str:
    """The tier in force at `at` by the decisions known by `known_by` (epoch ms)."""
    found = [t for t in tiers if t.effective_from <= at and t.known_ms <= known_by]
    return found[-1].tier if found else "NONE"


def later(tiers: list[Tier], at: dt.datetime, known_by: int) -> list[Tier]:
    """The decisions that come after a filing at `at` known by `known_by`: effective after it,
    or known after it; in the order they were known, then of effect."""
    found = [t for t in tiers if t.effective_from > at or t.known_ms > known_by]
    return sorted(found, key=lambda t: (t.known_ms, t.effective_from))
