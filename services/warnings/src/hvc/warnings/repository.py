"""The warnings service's own collections, insert-only where several writers may meet.

- `warnings`: one document per (customer, code, period), `_id` "<customer> <code> <period>":
  a second raise of the same warning is a duplicate-key error, never a second warning.
- `published`: one marker per published warning (claim, publish, then mark).
- `tasks`: the retention task each warning opens, `_id` = the warning id.
- `closures`: a task's closure (outcome, who, when), `_id` = the task id: closed once.
- `contacts`: contact history per customer, `_id` = the client's contact id (idempotent).

Profiles and window state are not here: they live in the keyed streams' state log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.mongo import all_of, insert_new, opened, page

Doc = dict[str, Any]


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.warnings = db["warnings"]
        self.published = db["published"]
        self.tasks = db["tasks"]
        self.closures = db["closures"]
        self.contacts = db["contacts"]

    async def ensure_indexes(self) -> None:
        await self.warnings.create_index([("customer_id", ASCENDING), ("detected_at", ASCENDING)])
        await self.tasks.create_index([("manager_id", ASCENDING), ("status", ASCENDING)])
        await self.tasks.create_index([("customer_id", ASCENDING)])
        # A group's members by their profiles (a group's open tasks, for its 360).
        await self.db["profiles"].create_index([("group_id", ASCENDING)])
        await self.contacts.create_index([("customer_id", ASCENDING), ("at", ASCENDING)])
        # The pipeline's quarterly callbacks (hvc.warnings.callbacks), read by manager and quarter.
        await self.db["callbacks"].create_index([("manager_id", ASCENDING), ("due_at", ASCENDING)])
        await self.db["callbacks"].create_index([("quarter", ASCENDING)])

    async def is_published(self, warning_id: str) -> bool:
        return await self.published.find_one({"_id": warning_id}) is not None

    async def mark_published(self, warning_id: str, at: dt.datetime) -> None:
        await insert_new(self.published, [{"_id": warning_id, "at": at}])

    async def task(self, task_id: str) -> Doc | None:
        return await self.tasks.find_one({"_id": task_id})

    async def tasks_of(self, manager_id: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        query = {"manager_id": manager_id}
        return await page(self.tasks, query, [("due_at", ASCENDING)], limit, offset)

    async def open_candidates(self, manager_id: str, limit: int) -> list[Doc]:
        """The manager's tasks not marked closed, soonest due first, at most `limit` (a task
        closed but not marked yet may be among them: its closure decides)."""
        query = {"manager_id": manager_id, "status": "OPEN"}
        found = self.tasks.find(query).sort("due_at", ASCENDING)
        return await all_of(found.limit(limit))

    async def tasks_of_customer(
        self, customer_id: str, limit: int, offset: int
    ) -> tuple[list[Doc], int]:
        query = {"customer_id": customer_id}
        return await page(self.tasks, query, [("due_at", ASCENDING)], limit, offset)

    async def tasks_of_group(self, group_id: str, limit: int) -> list[Doc]:
        """The tasks of a group's members (by their profiles) and of the group itself (a
        group warning) not marked closed, latest due first, at most `limit` (a task closed
        but not marked yet may be among them: its closure decides)."""
        members = await all_of(self.db["profiles"].find({"group_id": group_id}, {"_id": 1}))
        ids = sorted({group_id, *(str(m["_id"]) for m in members)})
        query = {"customer_id": {"$in": ids}, "status": "OPEN"}  # not marked closed
        found = self.tasks.find(query).sort("due_at", DESCENDING)
        return await all_of(found.limit(limit))

    async def closures_of(self, task_ids: list[str]) -> dict[str, Doc]:
        if not task_ids:
            return {}
        return {d["_id"]: d for d in await all_of(self.closures.find({"_id": {"$in": task_ids}}))}

    async def close(self, doc: Doc) -> bool:
        """The closure, once (its `_id` the task's); then the task marked CLOSED, so that the
        open tasks are read by the (manager_id, status) index, not among every task the
        manager ever had. The closure decides: a task left OPEN by a crash between the two is
        still read as closed (and marked again by `mark_closed`)."""
        made = bool(await insert_new(self.closures, [doc]))
        await self._mark([doc["_id"]])
        return made

    async def mark_closed(self, batch: int = 1000) -> int:
        """Mark CLOSED every task with a closure (tasks closed before the mark, or between a
        closure and its mark); returns how many tasks it changed. Idempotent, in batches."""
        changed, ids = 0, []
        async with opened(self.closures.find({}, {"_id": 1}, batch_size=batch)) as cursor:
            async for d in cursor:
                ids.append(d["_id"])
                if len(ids) >= batch:
                    changed += await self._mark(ids)
                    ids = []
        if ids:
            changed += await self._mark(ids)
        return changed

    async def _mark(self, ids: list[str]) -> int:
        r = await self.tasks.update_many(
            {"_id": {"$in": ids}, "status": "OPEN"}, {"$set": {"status": "CLOSED"}}
        )
        return int(r.modified_count)

    async def add_contact(self, doc: Doc) -> bool:
        return bool(await insert_new(self.contacts, [doc]))

    async def contact(self, contact_id: str) -> Doc | None:
        return await self.contacts.find_one({"_id": contact_id})

    async def contacts_of(self, customer_id: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        query = {"customer_id": customer_id}
        return await page(self.contacts, query, [("at", DESCENDING)], limit, offset)

    async def last_outbound(self, customer_id: str) -> Doc | None:
        # Service notices (an outage's, hvc.warnings.outages) are in the history, not under
        # the outbound contact rules.
        query = {"customer_id": customer_id, "direction": "OUTBOUND", "kind": {"$ne": "NOTICE"}}
        return await self.contacts.find_one(query, sort=[("at", DESCENDING)])

    async def group(self, collection: str, keys: list[str]) -> list[Doc]:
        """Counts by `keys` (a $group: one of the stages both stores support)."""
        pipeline: list[Doc] = [
            {"$group": {"_id": {k: f"${k}" for k in keys}, "count": {"$sum": 1}}},
            {"$sort": {"_id": 1}},
        ]
        return await all_of(await self.db[collection].aggregate(pipeline))

    async def id_range(self, collection: str, low: str, high: str) -> list[Doc]:
        """The documents whose `_id` is in [low, high), in `_id` order."""
        query = {"_id": {"$gte": low, "$lt": high}}
        return await all_of(self.db[collection].find(query).sort("_id", ASCENDING))

    async def all(self, collection: str, projection: Doc) -> list[Doc]:
        return await all_of(self.db[collection].find({}, projection))
