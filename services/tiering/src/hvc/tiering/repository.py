"""The tiering service's own collections: customer facts, groups, tier history, overrides log.

Facts are maps keyed by event id (or bill id), so a redelivered event finds its key already
there and changes nothing. `rev` moves only with facts that change the timeline, and guards
the write of what was emitted (optimistic concurrency, no transactions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hvc.common.locks import KeyedLocks
from hvc.tiering.domain.model import (
    AnnualResult,
    Bill,
    CustomerFacts,
    GroupSnapshot,
    Override,
    Payment,
    PlanVersion,
    Profile,
)
from hvc.tiering.domain.tiers import Tier
from hvc.tiering.domain.timeline import Decision, Emitted, instant_key

Doc = dict[str, Any]
_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-:]{1,100}")
FACT_FIELDS = ("profiles", "bills", "payments", "plans", "overrides", "annual", "emitted", "rev")


def field_key(raw: str) -> str:
    """A MongoDB field name for an id: itself when safe, else a stable hash (no dots, no $)."""
    if _SAFE_KEY.fullmatch(raw):
        return raw
    return "h_" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _utc(v: dt.datetime) -> dt.datetime:
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def _utc_opt(v: dt.datetime | None) -> dt.datetime | None:
    return None if v is None else _utc(v)


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


async def set_once(collection: AsyncCollection[Doc], filter_: Doc, update: Doc) -> bool:
    """Apply `update` where `filter_` matches, creating the document if there is none.

    Two upserts racing on a new document: one gets a duplicate-key error on _id, which proves
    the document now exists, so it is retried as a plain update. Returns False when the filter
    still does not match: the fact is already there (a redelivery) or is older than what is.
    """
    try:
        res = await collection.update_one(filter_, update, upsert=True)
    except DuplicateKeyError:
        res = await collection.update_one(filter_, update)
        return bool(res.modified_count)
    return bool(res.modified_count or res.upserted_id is not None)


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.customers = db["customers"]
        self.groups = db["groups"]
        self.history = db["tier_history"]
        self.override_log = db["override_log"]
        # One writer per customer document in this process (see hvc.common.locks).
        self.locks = KeyedLocks()

    async def ensure_indexes(self) -> None:
        await self.customers.create_index([("group_ids", ASCENDING)])
        await self.history.create_index(
            [("customer_id", ASCENDING), ("effective_from", DESCENDING)]
        )
        await self.override_log.create_index([("customer_id", ASCENDING), ("set_at", ASCENDING)])

    # -- facts -----------------------------------------------------------------------------

    async def _add_fact(
        self, customer_id: str, path: str, value: Doc, *, timeline: bool, extra: Doc | None = None
    ) -> bool:
        """Set `path` once; return False when it was already there (a redelivery)."""
        update: Doc = {"$set": {path: value}}
        if timeline:
            update["$inc"] = {"rev": 1}
        if extra:
            update.update(extra)
        async with self.locks.hold(customer_id):
            return await set_once(
                self.customers, {"_id": customer_id, path: {"$exists": False}}, update
            )

    async def add_profile(self, customer_id: str, p: Profile) -> bool:
        doc = {
            "event_id": p.event_id,
            "at": p.at,
            "joined_on": p.joined_on.isoformat() if p.joined_on else None,
            "group_id": p.group_id,
            "is_key_person": p.is_key_person,
        }
        extra = {"$addToSet": {"group_ids": p.group_id}} if p.group_id else None
        return await self._add_fact(
            customer_id, f"profiles.{field_key(p.event_id)}", doc, timeline=True, extra=extra
        )

    async def add_plan(self, customer_id: str, p: PlanVersion) -> bool:
        doc = {
            "event_id": p.event_id,
            "plan_id": p.plan_id,
            "monthly_fee_fen": p.monthly_fee_fen,
            "gotone": p.gotone,
            "effective_from": p.effective_from,
            "effective_to": p.effective_to,
            "at": p.at,
        }
        return await self._add_fact(
            customer_id, f"plans.{field_key(p.event_id)}", doc, timeline=True
        )

    async def add_payment(self, customer_id: str, p: Payment) -> bool:
        doc = {"at": p.at, "amount_fen": p.amount_fen}
        return await self._add_fact(
            customer_id, f"payments.{field_key(p.event_id)}", doc, timeline=False
        )

    async def put_bill(self, customer_id: str, b: Bill) -> bool:
        """A bill id seen again replaces the stored bill only if it is newer (re-issue)."""
        path = f"bills.{field_key(b.bill_id)}"
        doc = {
            "bill_id": b.bill_id,
            "period": b.period,
            "amount_fen": b.amount_fen,
            "countable_fen": b.countable_fen,
            "at": b.at,
        }
        newer = {"$or": [{path: {"$exists": False}}, {f"{path}.at": {"$lt": b.at}}]}
        async with self.locks.hold(customer_id):
            return await set_once(
                self.customers, {"_id": customer_id, **newer}, {"$set": {path: doc}}
            )

    async def add_override(self, customer_id: str, o: Override) -> bool:
        doc = {
            "override_id": o.override_id,
            "tier": o.tier.name,
            "set_at": o.set_at,
            "expires_at": o.expires_at,
            "reason": o.reason,
            "by": o.by,
        }
        try:
            await self.override_log.insert_one(
                {"_id": o.override_id, "customer_id": customer_id, **doc}
            )
        except DuplicateKeyError:
            return False
        return await self._add_fact(
            customer_id, f"overrides.{field_key(o.override_id)}", doc, timeline=True
        )

    async def add_group_snapshot(self, g: GroupSnapshot) -> bool:
        doc = {
            "event_id": g.event_id,
            "at": g.at,
            "name": g.name,
            "sector": g.sector,
            "handsets": g.handsets,
            "monthly_spend_fen": g.monthly_spend_fen,
        }
        path = f"snapshots.{field_key(g.event_id)}"
        async with self.locks.hold(f"group|{g.group_id}"):
            return await set_once(
                self.groups, {"_id": g.group_id, path: {"$exists": False}}, {"$set": {path: doc}}
            )

    async def key_people_of(self, group_id: str) -> list[str]:
        cursor = self.customers.find({"group_ids": group_id}, {"_id": 1})
        return [d["_id"] async for d in cursor]

    # -- reading facts ---------------------------------------------------------------------

    async def load(self, customer_id: str) -> tuple[CustomerFacts, dict[str, Emitted], int] | None:
        doc = await self.customers.find_one({"_id": customer_id})
        return None if doc is None else from_doc(doc)

    async def groups_for(self, facts: CustomerFacts) -> dict[str, list[GroupSnapshot]]:
        ids = sorted({p.group_id for p in facts.profiles if p.group_id})
        if not ids:
            return {}
        out: dict[str, list[GroupSnapshot]] = {}
        async for d in self.groups.find({"_id": {"$in": ids}}):
            out[d["_id"]] = group_from_doc(d)
        return out

    async def all_groups(self) -> dict[str, list[GroupSnapshot]]:
        return {d["_id"]: group_from_doc(d) async for d in self.groups.find({})}

    async def scan(self, batch_size: int = 2000) -> AsyncIterator[Doc]:
        async for d in self.customers.find({}, batch_size=batch_size):
            yield d

    # -- decisions -------------------------------------------------------------------------

    def emitted_update(
        self,
        customer_id: str,
        rev: int,
        decisions: Iterable[Decision],
        extra_set: Doc | None = None,
    ) -> UpdateOne:
        sets: Doc = dict(extra_set or {})
        for d in decisions:
            sets[f"emitted.{instant_key(d.point.at)}"] = {
                "tier": d.point.new_tier.name,
                "count": d.seq,
            }
        return UpdateOne({"_id": customer_id, "rev": rev}, {"$set": sets, "$inc": {"rev": 1}})

    async def record(self, updates: list[UpdateOne], history: list[Doc]) -> int:
        """Append history (idempotent by event id), then apply the guarded updates.

        Returns how many guarded updates matched; the rest lost a race and must be retried.
        """
        if history:
            try:
                await self.history.insert_many(history, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if not updates:
            return 0
        res = await self.customers.bulk_write(updates, ordered=False)
        return int(res.matched_count)

    async def history_of(self, customer_id: str, limit: int, offset: int) -> list[Doc]:
        cursor = (
            self.history.find({"customer_id": customer_id})
            .sort([("effective_from", DESCENDING), ("seq", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [d async for d in cursor]

    async def count_history(self, customer_id: str) -> int:
        return await self.history.count_documents({"customer_id": customer_id})


def annual_to_doc(a: AnnualResult) -> Doc:
    return {
        "year": a.year,
        "as_of": a.as_of.isoformat(),
        "ruleset_version": a.ruleset_version,
        "consumption_points": a.consumption_points,
        "tenure_points": a.tenure_points,
        "tenure_years": a.tenure_years,
        "score": a.score,
        "tier": a.tier.name,
        "valid_from": a.valid_from,
    }


def from_doc(doc: Mapping[str, Any]) -> tuple[CustomerFacts, dict[str, Emitted], int]:
    f = CustomerFacts(doc["_id"])
    for p in (doc.get("profiles") or {}).values():
        f.profiles.append(
            Profile(
                p["event_id"],
                _utc(p["at"]),
                _date(p.get("joined_on")),
                p.get("group_id"),
                bool(p.get("is_key_person")),
            )
        )
    for b in (doc.get("bills") or {}).values():
        f.bills[b["bill_id"]] = Bill(
            b["bill_id"],
            b["period"],
            b["amount_fen"],
            b["countable_fen"],
            _utc(b["at"]),
        )
    for k, p in (doc.get("payments") or {}).items():
        f.payments.append(Payment(k, _utc(p["at"]), p["amount_fen"]))
    for p in (doc.get("plans") or {}).values():
        f.plans.append(
            PlanVersion(
                p["event_id"],
                p["plan_id"],
                p["monthly_fee_fen"],
                p["gotone"],
                _utc(p["effective_from"]),
                _utc_opt(p.get("effective_to")),
                _utc(p["at"]),
            )
        )
    for o in (doc.get("overrides") or {}).values():
        f.overrides.append(
            Override(
                o["override_id"],
                Tier[o["tier"]],
                _utc(o["set_at"]),
                _utc(o["expires_at"]),
                o["reason"],
                o["by"],
            )
        )
    for k, a in (doc.get("annual") or {}).items():
        f.annual[k] = AnnualResult(
            a["year"],
            dt.date.fromisoformat(a["as_of"]),
            a["ruleset_version"],
            a["consumption_points"],
            a["tenure_points"],
            a["tenure_years"],
            a["score"],
            Tier[a["tier"]],
            _utc(a["valid_from"]),
        )
    emitted = {
        k: Emitted(Tier[v["tier"]], v["count"]) for k, v in (doc.get("emitted") or {}).items()
    }
    return f, emitted, int(doc.get("rev", 0))


def group_from_doc(d: Mapping[str, Any]) -> list[GroupSnapshot]:
    return [
        GroupSnapshot(
            s["event_id"],
            _utc(s["at"]),
            d["_id"],
            s["name"],
            s["sector"],
            s["handsets"],
            s["monthly_spend_fen"],
        )
        for s in (d.get("snapshots") or {}).values()
    ]
