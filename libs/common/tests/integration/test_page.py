"""`page`: one page of a query and its total, on the real store, counting only when the page
cannot tell the total."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING

from hvc.common.mongo import page
from hvc.devinfra.commands import watched_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def coll(infra: Any) -> Any:
    async with watched_database(infra.mongo_uri, "it_page") as (db, counts):
        await db.items.insert_many(
            [{"_id": f"i{n:02d}", "owner": "a" if n < 7 else "b", "n": n} for n in range(10)]
        )
        counts.clear()
        yield db.items, counts


@pytest.mark.parametrize(
    ("limit", "offset", "want", "total", "counted"),
    [
        (10, 0, list(range(7)), 7, False),  # short first page: the total is its length
        (3, 6, [6], 7, False),  # short last page: offset + its length
        (3, 0, [0, 1, 2], 7, True),  # a full page: there may be more
        (7, 0, list(range(7)), 7, True),  # exactly full: it cannot tell
        (3, 9, [], 7, True),  # past the end: the offset says nothing of the total
    ],
)
async def test_a_page_counts_only_when_it_cannot_tell_the_total(
    coll, limit, offset, want, total, counted
):
    items, counts = coll
    docs, n = await page(items, {"owner": "a"}, [("n", ASCENDING)], limit, offset)
    assert [d["n"] for d in docs] == want
    assert n == total
    reads = counts.named("find", "aggregate", "count")
    assert (len(reads) > 1) is counted, reads
