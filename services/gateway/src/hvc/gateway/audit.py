"""The audit trail: every read of customer data, append-only (insert only; the API has no
route that changes or deletes an entry).

A read answers only once its entry is stored. Entries of concurrent requests share one
`insert_many` (group commit): while one batch is being written the next one gathers, so under
load the store sees one write per batch instead of one per request, and a request alone waits
no longer than for its own insert.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.mongo import page
from hvc.gateway.auth import Principal

MAX_BATCH = 500


@dataclass
class Audit:
    db: AsyncDatabase[Any]
    _pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = field(
        default_factory=list, init=False, repr=False
    )
    _writer: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def ensure_indexes(self) -> None:
        await self.db["audit"].create_index([("customer_id", ASCENDING), ("at", DESCENDING)])

    async def record(
        self, who: Principal, customer_id: str | None, route: str, request_id: str, status: int
    ) -> None:
        """Store the entry; returns when it is stored, raises what the store raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = {
            "_id": uuid.uuid4().hex,
            "at": dt.datetime.now(dt.UTC),
            "sub": who.sub,
            "role": who.role,
            "customer_id": customer_id,
            "route": route,
            "request_id": request_id,
            "status": status,
        }
        self._pending.append((entry, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Shielded: a caller that goes away does not cancel the batch it shares with others.
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self.db["audit"].insert_many([e for e, _ in batch], ordered=False)
            except Exception as exc:  # each waiting request raises it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def of(self, customer_id: str, limit: int, offset: int) -> dict[str, Any]:
        q = {"customer_id": customer_id}
        docs, total = await page(self.db["audit"], q, [("at", DESCENDING)], limit, offset)
        items = [
            {
                **{k: v for k, v in d.items() if k != "_id"},
                "id": d["_id"],
                "at": d["at"].replace(tzinfo=dt.UTC).isoformat(),
            }
            for d in docs
        ]
        return {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
        }
