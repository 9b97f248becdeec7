"""The entitlement ledger: every grant, claim, revocation, expiry, command and notice is an
insert-only entry whose `_id` names its cause.

`_id`s start with the customer ("<customer>|<kind>|..."), so one customer's ledger is one
`_id` range. The stream (hvc.benefits.pipeline) writes its entries as views, in batches, and
publishes through the engine. The HTTP side's claims are written here one by one: a second
writer of the same slot gets a duplicate-key error, never a second entry, which keeps a quota
from being exceeded. A claim's entry carries the message it publishes; after a crash between
the insert and the publish, start-up publishes the claims not marked published, with the
same event id.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.kafka import Send
from hvc.common.mongo import all_of, insert_new, opened

log = logging.getLogger(__name__)
Doc = dict[str, Any]


@dataclass
class Ledger:
    db: AsyncDatabase[Doc]
    send: Send
    unpublished: set[str] = field(default_factory=set)

    @property
    def entries(self) -> Any:
        return self.db["ledger"]

    @property
    def published(self) -> Any:
        return self.db["published"]

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("kind", ASCENDING), ("valid_to", ASCENDING)])

    async def record(
        self, entry: Doc, topic: str, key: str, message: bytes, *, contested: bool = False
    ) -> bool:
        """Insert the entry and publish its message; True if this call created it. A repeat
        of the same cause publishes nothing new, unless the entry is there but was never
        published: the first try's publish failed, or the store took the insert and went
        away before it answered (the retry finds the entry there).

        `contested`: the `_id` is a slot several requests compete for (a claim), not a
        cause; only the request that inserted it may publish it."""
        doc = {**entry, "topic": topic, "message": message}
        created = bool(await insert_new(self.entries, [doc]))
        # A racer that lost a contested insert publishes nothing. If the writer's publish
        # failed, its retry (same cause, same process) publishes; after a crash, start-up
        # does (republish).
        if (
            created
            or entry["_id"] in self.unpublished
            or (not contested and not await self.is_published(entry["_id"]))
        ):
            try:
                await self.send(topic, key.encode(), message, [])
                await self.mark(entry["_id"])
            except Exception:
                self.unpublished.add(entry["_id"])
                raise
            self.unpublished.discard(entry["_id"])
        return created

    async def ensure_published(self, entry_id: str) -> None:
        """Publish an entry that a try cut short wrote but did not publish."""
        if await self.is_published(entry_id):
            return
        e = await self.entries.find_one({"_id": entry_id})
        if e is not None:
            await self.send(e["topic"], e["customer_id"].encode(), e["message"], [])
            await self.mark(entry_id)

    async def is_published(self, entry_id: str) -> bool:
        return await self.published.find_one({"_id": entry_id}) is not None

    async def mark(self, entry_id: str) -> None:
        await insert_new(self.published, [{"_id": entry_id, "at": dt.datetime.now(dt.UTC)}])

    async def of(self, customer_id: str) -> list[Doc]:
        lo, hi = f"{customer_id}|", f"{customer_id}}}"
        cursor = self.entries.find({"_id": {"$gte": lo, "$lt": hi}}, {"message": 0})
        return await all_of(cursor.sort("_id", ASCENDING))

    async def republish(self) -> None:
        """Publish the claims a crash left unpublished (start-up)."""
        done = {d["_id"] for d in await all_of(self.published.find({}, {"_id": 1}))}
        n = 0
        async with opened(
            self.entries.find(
                {"kind": "CLAIM"}, {"_id": 1, "topic": 1, "message": 1, "customer_id": 1}
            )
        ) as entries:
            async for e in entries:
                if e["_id"] not in done:
                    await self.send(e["topic"], e["customer_id"].encode(), e["message"], [])
                    await self.mark(e["_id"])
                    n += 1
        if n:
            log.warning("republished claims a crash left unpublished", extra={"claims": n})
