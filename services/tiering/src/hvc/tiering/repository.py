"""The tiering service's own collections.

Views, written by its pipeline (hvc.tiering.pipeline) in batches, read here:
- `customers`: one document per customer holding its facts but bills and payments (profiles,
  plans, overrides) as maps keyed by event id. Read by `_id`, and scanned in `_id` order by
  the annual run and the reports.
- `ledger`: a customer's bills (`_id` "<customer> b <bill>", replaced by a re-issue, removed
  when older than the years kept) and payments ("<customer> p <event>"), one small document
  each, inserted once. Kept apart because bills are most of tiering's input: a document per
  bill is one insert of a few hundred bytes, where rewriting the customer's document (three
  years of bills) cost the local store about 1 ms per bill (bench/README, "Figures"). Read
  with `customers` (`with_ledger`), so readers see one document as before.
- `tier_history`: insert-only, one document per published decision, `_id` "<customer>
  <instant> <seq>".
- `groups`: one document per group, its snapshots.

Written here, by the HTTP side and the annual run:
- `override_log`: insert-only, `_id` the override id (from the request's Idempotency-Key).
- `annual_results`: insert-only; an annual result's `_id` names its content, so an equal
  re-run inserts nothing.
- `annual_in_force`: one document per customer (`_id` = customer id) holding, per year, the
  result in force (the latest computed), so a read or a decision finds a customer's results
  with one lookup by `_id`, the one lookup every store answers from an index. The annual run
  is its only writer and writes it after `annual_results`, so a run cut off in between is
  completed by the next one (which finds the result missing here and writes both again).

Why insert-only: FerretDB v1 on SQLite applies an update as a read-modify-write outside a
transaction (concurrent updates of one document lose all but one, FerretDB issue #3040) and
every filtered update scans the collection; a unique insert is atomic and cheap on it and on
MongoDB alike. Keys are "<customer_id> <rest>": the space sorts below every id character, so a
customer's documents come right after it in `_id` order and runs can merge-join sorted scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Container, Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from hvc.common.mongo import Cursor, all_of, insert_new, opened, page
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
from hvc.tiering.domain.timeline import Emitted

Doc = dict[str, Any]
_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-:]{1,100}")
SEP = " "


def field_key(raw: str) -> str:
    """A MongoDB field name for an id: itself when safe, else a stable hash (no dots, no $)."""
    if _SAFE_KEY.fullmatch(raw):
        return raw
    return "h_" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def owned_by(customer_id: str) -> Doc:
    """The `_id` range of a customer's insert-only documents."""
    return {"_id": {"$gte": customer_id + SEP, "$lt": customer_id + chr(ord(SEP) + 1)}}


async def by_ids(coll: AsyncCollection[Doc], ids: list[str], few: int = 32) -> list[Doc]:
    """The documents with these `_id`s: a few as concurrent lookups by `_id` (indexed on every
    store; FerretDB's SQLite backend answers `$in` with a scan), many as one `$in` query."""
    if not ids:
        return []
    if len(ids) > few:
        return await all_of(coll.find({"_id": {"$in": ids}}))
    found = await asyncio.gather(*(coll.find_one({"_id": i}) for i in ids))
    return [d for d in found if d is not None]


def _utc(v: dt.datetime) -> dt.datetime:
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def _utc_opt(v: dt.datetime | None) -> dt.datetime | None:
    return None if v is None else _utc(v)


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


class Repository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.customers = db["customers"]
        self.ledger = db[LEDGER]
        self.groups = db["groups"]
        self.group_members = db["group_members"]
        self.annual = db["annual_results"]
        self.in_force = db["annual_in_force"]
        self.history = db["tier_history"]
        self.override_log = db["override_log"]

    async def ensure_indexes(self) -> None:
        await self.customers.create_index([("group_ids", ASCENDING)])
        await self.history.create_index(
            [("customer_id", ASCENDING), ("effective_from", DESCENDING)]
        )
        await self.override_log.create_index([("customer_id", ASCENDING), ("set_at", ASCENDING)])
        await self.group_members.create_index([("group_id", ASCENDING), ("customer_id", ASCENDING)])

    # -- overrides -------------------------------------------------------------------------

    async def log_override(self, customer_id: str, o: Override) -> tuple[bool, Override | None]:
        """Log the override (insert-only, `_id` its id): (True, it) when this call logged it;
        (False, the logged one) for a repeat of the id, whose first try may not have reached
        the pipeline; (False, None) when the id was logged for another customer."""
        try:
            await self.override_log.insert_one(
                {"_id": o.override_id, "customer_id": customer_id, **override_doc(o)}
            )
            return True, o
        except DuplicateKeyError:
            first = await self.override_log.find_one({"_id": o.override_id})
            if first is None or first["customer_id"] != customer_id:
                return False, None
            return False, override_from_doc(first)

    # -- reading ---------------------------------------------------------------------------

    async def _annual_of(self, customer_id: str) -> list[Doc]:
        doc = await self.in_force.find_one({"_id": customer_id})
        return list((doc or {}).get("years", {}).values())

    async def facts(self, customer_id: str) -> CustomerFacts | None:
        """A customer's facts and annual results in force (two lookups by `_id` and a range of
        `_id`s, at once)."""
        doc, ledger, annual = await asyncio.gather(
            self.customers.find_one({"_id": customer_id}),
            all_of(self.ledger.find(owned_by(customer_id))),
            self._annual_of(customer_id),
        )
        if doc is None:
            return None
        return from_docs(with_ledger(doc, ledger), annual)[0]

    async def history_docs(self, customer_id: str) -> list[Doc]:
        """The customer's decisions in the `tier_history` view."""
        return await all_of(self.history.find(owned_by(customer_id)))

    async def groups_for(self, facts: CustomerFacts) -> dict[str, list[GroupSnapshot]]:
        ids = sorted({p.group_id for p in facts.profiles if p.group_id})
        if not ids:
            return {}
        return {d["_id"]: group_from_doc(d) for d in await by_ids(self.groups, ids)}

    async def group(self, group_id: str) -> Doc | None:
        """A group's `groups` view document (its snapshots and its members' part of its file)."""
        return await self.groups.find_one({"_id": group_id})

    async def members_of(self, group_id: str, limit: int) -> list[Doc]:
        """A group's current members, key persons first, then by id (at most `limit`)."""
        return await all_of(
            self.group_members.find({"group_id": group_id, "member": True})
            .sort([("key_person", DESCENDING), ("customer_id", ASCENDING)])
            .limit(limit)
        )

    async def group_docs(self) -> list[Doc]:
        return await all_of(self.groups.find({}))

    async def member_stints(self) -> list[Doc]:
        """Every membership's stints (for the groups' stability over a period)."""
        return await all_of(self.group_members.find({}, {"group_id": 1, "stints": 1}))

    async def all_groups(self) -> dict[str, list[GroupSnapshot]]:
        return {d["_id"]: group_from_doc(d) for d in await all_of(self.groups.find({}))}

    async def scan(self, batch_size: int = 2000) -> AsyncIterator[tuple[Doc, list[Doc], list[Doc]]]:
        """Every customer (its bills and payments in, `with_ledger`) with its annual results in
        force and its decisions: four `_id`-ordered scans merged, with no per-customer query."""
        async with contextlib.AsyncExitStack() as scans:
            # Closed however the scan ends: a caller that stops early (a cancelled report)
            # must not leave cursors open on the server (`hvc.common.mongo.all_of`).
            in_force, history, ledger, customers = [
                await scans.enter_async_context(
                    opened(coll.find({}, batch_size=batch_size).sort("_id", ASCENDING))
                )
                for coll in (self.in_force, self.history, self.ledger, self.customers)
            ]
            async for row in self._merge(customers, in_force, history, ledger):
                yield row

    @staticmethod
    async def _merge(
        customers: Cursor, in_force: Cursor, history: Cursor, ledger: Cursor
    ) -> AsyncIterator[tuple[Doc, list[Doc], list[Doc]]]:
        years: Doc | None = await anext(in_force, None)
        owned = _Owned(history)
        accounts = _Owned(ledger)
        async for doc in customers:
            cid = doc["_id"]
            # Skip documents of customers that sort before this one (no facts stored).
            while years is not None and years["_id"] < cid:
                years = await anext(in_force, None)
            annual: list[Doc] = []
            if years is not None and years["_id"] == cid:
                annual = list(years.get("years", {}).values())
            decided = await owned.of(cid)
            yield with_ledger(doc, await accounts.of(cid)), annual, decided

    # -- annual results and decisions ------------------------------------------------------

    async def put_annual(self, docs: list[Doc], known: Container[str] = ()) -> set[str]:
        """Store annual results: the insert-only record first, then the results in force.

        `known`: customers that already have results in force (the run's scan says which);
        the others get theirs in one bulk insert, much cheaper than upserts on the local store.
        """
        inserted = await insert_new(self.annual, docs)
        fresh = {d["customer_id"]: d for d in docs if d["customer_id"] not in known}
        made = await insert_new(
            self.in_force,
            [{"_id": c, "years": {str(d["year"]): d}} for c, d in fresh.items()],
        )
        updates = [
            d for d in docs if d["customer_id"] not in made or fresh[d["customer_id"]] is not d
        ]
        if updates:
            await self.in_force.bulk_write(
                [
                    UpdateOne(
                        {"_id": d["customer_id"]}, {"$set": {f"years.{d['year']}": d}}, upsert=True
                    )
                    for d in updates
                ],
                ordered=False,
            )
        return inserted

    async def history_of(self, customer_id: str, limit: int, offset: int) -> tuple[list[Doc], int]:
        """One page of the customer's decisions, newest first, and how many there are."""
        order = [("effective_from", DESCENDING), ("seq", DESCENDING)]
        return await page(self.history, owned_by(customer_id), order, limit, offset)


class _Owned:
    """An `_id`-ordered scan of insert-only documents ("<customer> <rest>"), taken customer
    by customer in `_id` order."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.head: Doc | None = None
        self.started = False

    async def of(self, customer_id: str) -> list[Doc]:
        if not self.started:
            self.head, self.started = await anext(self.cursor, None), True
        prefix = customer_id + SEP
        while self.head is not None and self.head["_id"] < prefix:
            self.head = await anext(self.cursor, None)  # a customer with no document
        found: list[Doc] = []
        while self.head is not None and self.head["_id"].startswith(prefix):
            found.append(self.head)
            self.head = await anext(self.cursor, None)
        return found


# -- documents ---------------------------------------------------------------------------

LEDGER = "ledger"
BILL, PAYMENT = "b", "p"


def ledger_id(customer_id: str, kind: str, key: str) -> str:
    """The `_id` of a bill (`BILL`, its `field_key`) or a payment (`PAYMENT`, its event's)."""
    return f"{customer_id}{SEP}{kind}{SEP}{key}"


def ledger_bill(customer_id: str, b: Bill) -> Doc:
    return {"_id": ledger_id(customer_id, BILL, field_key(b.bill_id)), **bill_doc(b)}


def ledger_payment(customer_id: str, key: str, at: dt.datetime, amount_fen: int) -> Doc:
    return {"_id": ledger_id(customer_id, PAYMENT, key), "at": at, "amount_fen": amount_fen}


def ledger_docs(f: CustomerFacts) -> list[Doc]:
    """The `ledger` documents of a customer's facts (bulk loads, benchmarks, tests)."""
    return [ledger_bill(f.customer_id, b) for b in f.bills.values()] + [
        ledger_payment(f.customer_id, field_key(p.event_id), p.at, p.amount_fen) for p in f.payments
    ]


def with_ledger(doc: Doc, ledger: Iterable[Doc]) -> Doc:
    """A `customers` document with its `ledger` documents as its `bills` and `payments`
    maps (the shape `from_docs` reads)."""
    bills: Doc = {}
    payments: Doc = {}
    for d in ledger:
        _, kind, key = d["_id"].split(SEP, 2)
        fields = {k: v for k, v in d.items() if k != "_id"}
        (bills if kind == BILL else payments)[key] = fields
    return {**doc, "bills": bills, "payments": payments}


def _profile_doc(p: Profile) -> Doc:
    return {
        "event_id": p.event_id,
        "at": p.at,
        "joined_on": p.joined_on.isoformat() if p.joined_on else None,
        "group_id": p.group_id,
        "is_key_person": p.is_key_person,
    }


def bill_doc(b: Bill) -> Doc:
    # By hand, not dataclasses.asdict: that deep-copies every value, and this runs for every
    # bill of a customer on each of its decisions.
    return {
        "bill_id": b.bill_id,
        "period": b.period,
        "amount_fen": b.amount_fen,
        "countable_fen": b.countable_fen,
        "at": b.at,
    }


def _plan_doc(p: PlanVersion) -> Doc:
    return {
        "event_id": p.event_id,
        "plan_id": p.plan_id,
        "monthly_fee_fen": p.monthly_fee_fen,
        "gotone": p.gotone,
        "effective_from": p.effective_from,
        "effective_to": p.effective_to,
        "at": p.at,
    }


def customer_doc(f: CustomerFacts) -> Doc:
    """The `customers` document of a customer's facts, bills and payments aside (they are
    `ledger_docs`); `from_docs` reads it `with_ledger`."""
    return {
        "_id": f.customer_id,
        "profiles": {field_key(p.event_id): _profile_doc(p) for p in f.profiles},
        "group_ids": sorted({p.group_id for p in f.profiles if p.group_id}),
        "plans": {field_key(p.event_id): _plan_doc(p) for p in f.plans},
        "overrides": {field_key(o.override_id): override_doc(o) for o in f.overrides},
    }


def facts_doc(f: CustomerFacts) -> Doc:
    """All of a customer's facts in one document, bills and payments in (the pipeline's
    state keeps this shape); `from_docs` reads it."""
    return {
        **customer_doc(f),
        "bills": {field_key(b.bill_id): bill_doc(b) for b in f.bills.values()},
        "payments": {
            field_key(p.event_id): {"at": p.at, "amount_fen": p.amount_fen} for p in f.payments
        },
    }


def annual_doc(customer_id: str, a: AnnualResult, computed_at: dt.datetime) -> Doc:
    """An annual result; its `_id` names its content, so an equal re-run inserts nothing."""
    content = f"{a.year}|{a.ruleset_version}|{a.consumption_points}|{a.tenure_points}|{a.tier.name}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return {
        "_id": f"{customer_id}{SEP}{a.year}{SEP}{digest}",
        "customer_id": customer_id,
        "computed_at": computed_at,
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


def from_docs(
    doc: Mapping[str, Any], annual: Iterable[Doc] = (), history: Iterable[Doc] = ()
) -> tuple[CustomerFacts, dict[str, Emitted]]:
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
            b["bill_id"], b["period"], b["amount_fen"], b["countable_fen"], _utc(b["at"])
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
    f.overrides.extend(override_from_doc(o) for o in (doc.get("overrides") or {}).values())
    # The latest computed result of each year is the one in force; older ones stay as history.
    for a in sorted(annual, key=lambda a: (a["computed_at"], a["_id"])):
        f.annual[str(a["year"])] = AnnualResult(
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
    emitted: dict[str, Emitted] = {}
    for h in history:
        key = h["_id"].split(SEP)[1]
        if key not in emitted or emitted[key].count < h["seq"]:
            emitted[key] = Emitted(Tier[h["new_tier"]], h["seq"])
    return f, emitted


def override_doc(o: Override) -> Doc:
    return {
        "override_id": o.override_id,
        "tier": o.tier.name,
        "set_at": o.set_at,
        "expires_at": o.expires_at,
        "reason": o.reason,
        "by": o.by,
    }


def override_from_doc(o: Mapping[str, Any]) -> Override:
    return Override(
        o["override_id"],
        Tier[o["tier"]],
        _utc(o["set_at"]),
        _utc(o["expires_at"]),
        o["reason"],
        o["by"],
    )


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
