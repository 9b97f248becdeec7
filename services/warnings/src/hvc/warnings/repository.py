"""The warnings service's own collections, insert-only where several writers may meet.

- `warnings`: one document per (customer, code, period), `_id` "<customer> <code> <period>":
  a second raise of the same warning is a duplicate-key error, never a second warning.
- `published`: one marker per published warning (claim, publish, then mark).
- `tasks`: the retention task each warning opens, `_id` = the warning id.
- `closures`: a task's closure (outcome, who, when), `_id` = the task id: closed once.
- `profiles`: the latest CRM profile per customer (account manager, do-not-disturb).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.mongo import insert_new

Doc = dict[str, Any]


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.warnings = db["warnings"]
        self.published = db["published"]
        self.tasks = db["tasks"]
        self.profiles = db["profiles"]
        self.closures = db["closures"]

    async def ensure_indexes(self) -> None:
        await self.warnings.create_index([("customer_id", ASCENDING), ("detected_at", ASCENDING)])
        await self.tasks.create_index([("manager_id", ASCENDING), ("status", ASCENDING)])

    async def claim_warning(self, doc: Doc) -> bool:
        return bool(await insert_new(self.warnings, [doc]))

    async def is_published(self, warning_id: str) -> bool:
        return await self.published.find_one({"_id": warning_id}) is not None

    async def mark_published(self, warning_id: str, at: dt.datetime) -> None:
        await insert_new(self.published, [{"_id": warning_id, "at": at}])

    async def open_task(self, doc: Doc) -> bool:
        return bool(await insert_new(self.tasks, [doc]))

    async def task(self, task_id: str) -> Doc | None:
        return await self.tasks.find_one({"_id": task_id})

    async def tasks_of(self, manager_id: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        query = {"manager_id": manager_id}
        cursor = self.tasks.find(query).sort("due_at", ASCENDING).skip(offset).limit(limit)
        return [d async for d in cursor], await self.tasks.count_documents(query)

    async def closures_of(self, task_ids: list[str]) -> dict[str, Doc]:
        if not task_ids:
            return {}
        return {d["_id"]: d async for d in self.closures.find({"_id": {"$in": task_ids}})}

    async def close(self, doc: Doc) -> bool:
        return bool(await insert_new(self.closures, [doc]))

    async def profile(self, customer_id: str) -> Doc | None:
        return await self.profiles.find_one({"_id": customer_id})

    async def put_profile(self, customer_id: str, doc: Doc) -> None:
        """Keep the newest profile: a late, older upsert does not replace a newer one."""
        current = await self.profiles.find_one({"_id": customer_id}, {"at": 1})
        if current is not None and current["at"].replace(tzinfo=dt.UTC) >= doc["at"]:
            return
        await self.profiles.replace_one(
            {"_id": customer_id}, {"_id": customer_id, **doc}, upsert=True
        )
