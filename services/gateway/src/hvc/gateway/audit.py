"""The audit trail (查阅制度): every call of a `/v1` route by an authenticated caller, reads and
writes, answered or refused, append-only (insert only; the API has no route that changes or
deletes an entry, and in production the gateway's store user may only insert and read it).
An entry names the caller (subject and role), the route, method and query, the customers the
request named and the answer returned, the client's address, the gateway's own request id
(the caller's, if it sent one, beside it) and the status.

A call answers only once its entry is stored. Entries of concurrent requests share one
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
        await self.db["audit"].create_index([("customer_ids", ASCENDING), ("at", DESCENDING)])
        await self.db["audit"].create_index([("sub", ASCENDING), ("at", DESCENDING)])

    async def record(
        self,
        who: Principal,
        customer_ids: list[str],
        route: str,
        request_id: str,
        status: int,
        *,
        method: str = "GET",
        query: str = "",
        client: str | None = None,
        caller_request_id: str | None = None,
    ) -> None:
        """Store the entry; returns when it is stored, raises what the store raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = {
            "_id": uuid.uuid4().hex,
            "at": dt.datetime.now(dt.UTC),
            "sub": who.sub,
            "role": who.role,
            "customer_ids": customer_ids,
            "method": method,
            "route": route,
            "query": query,
            "client": client,
            "request_id": request_id,
            "caller_request_id": caller_request_id,
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

    async def of(
        self, customer_id: str | None, sub: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        """Entries about a customer, or by a staff member (or both), newest first."""
        q: dict[str, Any] = {}
        if customer_id is not None:
            q["customer_ids"] = customer_id
        if sub is not None:
            q["sub"] = sub
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


MAX_IDS = 1000  # customers named in one entry (a page of 500 tasks names at most 500)


def customers_in(*sources: Any) -> list[str]:
    """The customer ids a request named and its answer returned (every `customer_id` value:
    a path's, a query's, a body's, each item of a list), in order, once each."""
    found: dict[str, None] = {}

    def walk(v: Any, depth: int) -> None:
        if len(found) >= MAX_IDS or depth > 8:
            return
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "customer_id" and isinstance(x, str):
                    found.setdefault(x, None)
                else:
                    walk(x, depth + 1)
        elif isinstance(v, list):
            for x in v:
                walk(x, depth + 1)

    for src in sources:
        if isinstance(src, str):
            found.setdefault(src, None)
        else:
            walk(src, 0)
    return list(found)[:MAX_IDS]
