"""The complaints service's collections, insert-only where the truth is kept.

- `changes`: every change of every complaint, `_id` "<complaint> <seq:06d>"; the complaint is
  their fold. A unique `_id` per sequence number is the optimistic lock: two writers of the
  same next change cannot both succeed.
- `published`: one marker per ComplaintUpdated published (change or milestone); at start,
  what was written but not marked is published again, with the same event id.
- `milestones`: one claim per (complaint, clock, percent) reached: each escalation step is
  emitted once, across restarts.
- `complaints`: the read model (the latest view of each complaint) for lists and reports.
- `tiers`: tier decisions as first received, `_id` "<customer> <effective_from>", with when
  their cause was published (`known_ms`, hvc.complaints.frontier).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.mongo import all_of, insert_new, page

Doc = dict[str, Any]


def change_id(complaint_id: str, seq: int) -> str:
    return f"{complaint_id} {seq:06d}"


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.changes = db["changes"]
        self.published = db["published"]
        self.milestones = db["milestones"]
        self.complaints = db["complaints"]
        self.tiers = db["tiers"]

    async def ensure_indexes(self) -> None:
        await self.complaints.create_index([("customer_id", ASCENDING)])
        await self.complaints.create_index([("status", ASCENDING)])

    async def add_change(self, doc: Doc) -> bool:
        return bool(await insert_new(self.changes, [doc]))

    async def changes_of(self, complaint_id: str) -> list[Doc]:
        lo, hi = f"{complaint_id} ", f"{complaint_id} ~"
        cursor = self.changes.find({"_id": {"$gte": lo, "$lt": hi}}).sort("_id", ASCENDING)
        return await all_of(cursor)

    async def all_change_ids(self) -> list[str]:
        return [
            d["_id"] for d in await all_of(self.changes.find({}, {"_id": 1}).sort("_id", ASCENDING))
        ]

    async def published_ids(self) -> set[str]:
        return {d["_id"] for d in await all_of(self.published.find({}, {"_id": 1}))}

    async def published_changes_of(self, complaint_id: str) -> set[str]:
        lo, hi = f"{complaint_id} ", f"{complaint_id} ~"
        return {
            d["_id"] for d in await all_of(self.published.find({"_id": {"$gte": lo, "$lt": hi}}))
        }

    async def is_published(self, event_id: str) -> bool:
        return await self.published.find_one({"_id": event_id}) is not None

    async def mark_published(self, event_id: str, at: dt.datetime) -> None:
        await insert_new(self.published, [{"_id": event_id, "at": at}])

    async def claim_milestone(self, doc: Doc) -> bool:
        return bool(await insert_new(self.milestones, [doc]))

    async def all_milestones(self) -> list[Doc]:
        return await all_of(self.milestones.find({}))

    async def milestones_of(self, complaint_id: str) -> list[Doc]:
        lo, hi = f"{complaint_id}:", f"{complaint_id};"
        return await all_of(self.milestones.find({"_id": {"$gte": lo, "$lt": hi}}))

    async def put_view(self, view: Doc) -> None:
        await self.complaints.replace_one({"_id": view["_id"]}, view, upsert=True)

    async def view(self, complaint_id: str) -> Doc | None:
        return await self.complaints.find_one({"_id": complaint_id})

    async def views(self, query: Doc, limit: int, offset: int) -> tuple[list[Doc], int]:
        return await page(self.complaints, query, [("creationDate", DESCENDING)], limit, offset)

    async def open_ids(self) -> list[str]:
        query = {"status": {"$nin": ["CLOSED"]}}
        return [d["_id"] for d in await all_of(self.complaints.find(query, {"_id": 1}))]

    async def view_seqs(self) -> dict[str, int]:
        """Each stored view's last folded change (-1 for a view from before `_seq`)."""
        return {
            d["_id"]: d.get("_seq", -1) for d in await all_of(self.complaints.find({}, {"_seq": 1}))
        }

    async def all_views(self) -> list[Doc]:
        return await all_of(self.complaints.find({}))

    async def add_tier(
        self, customer_id: str, tier: str, effective_from: dt.datetime, known_ms: int
    ) -> None:
        """A decision as first received; `known_ms`: when its cause was published."""
        stamp = effective_from.strftime("%Y%m%dT%H%M%S")
        doc = {
            "_id": f"{customer_id} {stamp}",
            "customer_id": customer_id,
            "tier": tier,
            "effective_from": effective_from,
            "known_ms": known_ms,
        }
        await insert_new(self.tiers, [doc])

    async def tiers_of(self, customer_id: str) -> list[Tier]:
        """The customer's decisions, by effective instant (a handful a year)."""
        cursor = self.tiers.find(
            {"_id": {"$gt": f"{customer_id} ", "$lt": f"{customer_id}!"}}
        ).sort("_id", ASCENDING)
        return [
            Tier(str(d["tier"]), d["effective_from"], int(d.get("known_ms", 0)))
            for d in await all_of(cursor)
        ]


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
