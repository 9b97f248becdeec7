"""The audit trail's group commit, on the real store: concurrent reads share inserts, each
read returns only once its own entry is stored, and a store that cannot be reached fails
every read that waited on it (no read is answered unaudited)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from hvc.devinfra.commands import watched_database
from hvc.gateway.audit import Audit
from hvc.gateway.auth import Principal

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(infra: Any) -> Any:
    async with watched_database(infra.mongo_uri, "it_audit") as (db, inserts):
        yield db, inserts


AGENT = Principal(sub="agent-1", role="agent", customer_id=None, manager_id=None)


async def test_concurrent_reads_share_inserts_and_each_is_stored_before_it_returns(store):
    db, inserts = store
    audit = Audit(db)
    await audit.ensure_indexes()
    inserts.clear()

    async def read(i: int) -> int:
        await audit.record(AGENT, ["C1"], "/v1/customers/C1", f"req-{i:04d}", 200)
        # Returned: this read's own entry is in the store now.
        return await db["audit"].count_documents({"request_id": f"req-{i:04d}"})

    found = await asyncio.gather(*(read(i) for i in range(200)))
    assert found == [1] * 200
    batches = [len(c["documents"]) for c in inserts.named("insert")]
    assert sum(batches) == 200
    assert len(batches) < 200, batches  # shared, not one insert per read
    trail = await audit.of("C1", None, limit=500, offset=0)
    assert trail["total"] == 200 and len(trail["items"]) == 200
    assert {e["request_id"] for e in trail["items"]} == {f"req-{i:04d}" for i in range(200)}


async def test_reads_waiting_on_an_unreachable_store_all_fail():
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", serverSelectionTimeoutMS=300
    )
    audit = Audit(client["nowhere"])
    results = await asyncio.gather(
        *(audit.record(AGENT, ["C1"], "/r", f"q{i}", 200) for i in range(3)),
        return_exceptions=True,
    )
    await client.close()
    assert len(results) == 3
    assert all(isinstance(r, Exception) for r in results), results
