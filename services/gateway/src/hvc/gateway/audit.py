"""The audit trail: every read of customer data, append-only (insert only; the API has no
route that changes or deletes an entry)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.gateway.auth import Principal


@dataclass
class Audit:
    db: AsyncDatabase[Any]

    async def ensure_indexes(self) -> None:
        await self.db["audit"].create_index([("customer_id", ASCENDING), ("at", DESCENDING)])

    async def record(
        self, who: Principal, customer_id: str | None, route: str, request_id: str, status: int
    ) -> None:
        await self.db["audit"].insert_one(
            {
                "_id": uuid.uuid4().hex,
                "at": dt.datetime.now(dt.UTC),
                "sub": who.sub,
                "role": who.role,
                "customer_id": customer_id,
                "route": route,
                "request_id": request_id,
                "status": status,
            }
        )

    async def of(self, customer_id: str, limit: int, offset: int) -> dict[str, Any]:
        q = {"customer_id": customer_id}
        cursor = self.db["audit"].find(q).sort("at", DESCENDING).skip(offset).limit(limit)
        items = [
            {
                **{k: v for k, v in d.items() if k != "_id"},
                "id": d["_id"],
                "at": d["at"].replace(tzinfo=dt.UTC).isoformat(),
            }
            async for d in cursor
        ]
        return {
            "items": items,
            "total": await self.db["audit"].count_documents(q),
            "limit": limit,
            "offset": offset,
        }
