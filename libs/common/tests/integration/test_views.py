"""`MongoViews` on the real store: each mode's outcome, with runs of inserts written as one
unordered insert of the new documents."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from hvc.common.streams import MongoViews, View

pytestmark = pytest.mark.integration


async def test_views_land_as_written_one_by_one_with_inserts_batched(infra: Any) -> None:
    name = f"it_views_{uuid.uuid4().hex[:8]}"
    seed: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri)
    await seed[name].tasks.insert_one({"_id": "old", "status": "CLOSED"})
    views = MongoViews(AsyncMongoClient(infra.mongo_uri), name)
    try:
        batch = [
            View("tasks", "old", {"status": "OPEN"}, "insert"),  # there already: left alone
            View("tasks", "a", {"status": "OPEN", "n": 1}, "insert"),
            View("tasks", "a", {"status": "OPEN", "n": 2}, "insert"),  # the first one stands
            View("tasks", "b", {"status": "OPEN"}, "insert"),
            View("tasks", "a", {"status": "DONE"}, "set"),  # after the inserts before it
            View("tasks", "c", {"status": "OPEN"}, "insert"),  # a run after the set
            View("tasks", "b", None),  # a removal after its insert
            View("tasks", "d", {"status": "NEW"}, "set"),  # nothing to set: no document
            View("tasks", "e", {"status": "NEW"}, "fresh"),  # new: inserted
            View("tasks", "old", {"status": "MOVED"}, "fresh"),  # there after all: replaced
            View("tasks", "e", {"status": "FRESH"}, "fresh"),  # the last one of a run stands
            View("tasks", "old", {"status": "AGAIN"}, "replace"),  # after a fresh: inserted,
            # or, there already, replaced
            View("tasks", "f", {"status": "F1"}, "fresh"),
            View("tasks", "f", {"status": "F2"}, "replace"),  # new: inserted as it was last
        ]
        await asyncio.to_thread(views, "tasks", batch)
        await asyncio.to_thread(views, "tasks", batch)  # replayed: the same outcome
        got = {d["_id"]: d async for d in seed[name].tasks.find({})}
        assert got == {
            "old": {"_id": "old", "status": "AGAIN"},
            "a": {"_id": "a", "status": "DONE", "n": 1},
            "c": {"_id": "c", "status": "OPEN"},
            "e": {"_id": "e", "status": "FRESH"},
            "f": {"_id": "f", "status": "F2"},
        }
    finally:
        views.close()
        await seed.drop_database(name)
        await seed.close()


async def test_monthly_counts_are_summed_over_partitions_for_a_range(infra: Any) -> None:
    from hvc.common import monthly

    name = f"it_monthly_{uuid.uuid4().hex[:8]}"
    seed: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_uri)
    views = MongoViews(AsyncMongoClient(infra.mongo_uri), name)
    try:
        batch = [
            View("m", f"{month} {p:03d}", {"month": month, "partition": p, "counts": counts})
            for month, p, counts in (
                ("2024-12", 0, {"code:A": 9}),  # before the range
                ("2025-01", 0, {"code:A": 1}),
                ("2025-01", 0, {"code:A": 2}),  # the same document again: the last stands
                ("2025-01", 11, {"code:A": 3, "code:B": 1}),
                ("2025-03", 5, {"code:B": 4}),
                ("2025-04", 0, {"code:A": 7}),  # after it
            )
        ]
        await asyncio.to_thread(views, "m", batch)
        got = await monthly.read(seed[name], "m", "2025-01", "2025-03")
        assert got == {
            "2025-01": {"code:A": 5, "code:B": 1},
            "2025-02": {},
            "2025-03": {"code:B": 4},
        }
    finally:
        views.close()
        await seed.drop_database(name)
        await seed.close()
