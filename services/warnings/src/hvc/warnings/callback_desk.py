"""The HTTP side of quarterly callbacks and visits (回访/拜访, DOMAIN §6): a manager's callbacks
and visits (open, done, overdue), recording one's outcome once, and the quarter's figures by
manager. The pipeline plans them (hvc.warnings.callbacks, the `callbacks` view); an outcome is
a document of its own (`callback_outcomes`, `_id` the callback's, inserted once) and an entry
in the customer's (the group's, for a visit) contact history (`kind: CALLBACK` by phone,
`VISIT` on site), which the outbound contact cap then counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING

from hvc.common.kafka import Send
from hvc.common.mongo import all_of, insert_new
from hvc.warnings.callbacks import VIEW
from hvc.warnings.contacts import tell_pipeline
from hvc.warnings.domain.callbacks import OUTCOMES
from hvc.warnings.repository import Repository

OUTCOME_VIEW = "callback_outcomes"
MAX_LISTED = 2000  # a manager's callbacks of a quarter: a few hundred customers at most


class CallbackNotFound(LookupError):
    pass


class CallbackDone(RuntimeError):
    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(f"callback already done: {outcome['outcome']}")
        self.outcome = outcome


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d.astimezone(dt.UTC)


def view(doc: dict[str, Any], outcome: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    due = _utc(doc["due_at"])
    return {
        "callback_id": doc["_id"],
        "kind": doc.get("kind", "CALLBACK"),
        "customer_id": doc["customer_id"],
        "group_name": doc.get("group_name"),
        "manager_id": doc.get("manager_id"),
        "quarter": doc["quarter"],
        "reason": doc.get("reason"),
        "tier": doc.get("tier"),
        "planned_on": doc.get("planned_on"),
        "due_at": due.isoformat(),
        "status": "DONE" if outcome else "OPEN",
        "overdue": outcome is None and due < now,
        "outcome": outcome["outcome"] if outcome else None,
        "notes": outcome.get("notes") if outcome else None,
        "done_at": _utc(outcome["at"]).isoformat() if outcome else None,
        "done_by": outcome.get("by") if outcome else None,
    }


@dataclass
class CallbackDesk:
    repo: Repository
    zone: ZoneInfo  # the operator's: what quarter it is
    send: Send | None = None  # the pipeline told of the contact (its care touches' cap)

    async def _outcomes(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        found = self.repo.db[OUTCOME_VIEW].find({"_id": {"$in": ids}})
        return {d["_id"]: d for d in await all_of(found)}

    async def of_manager(
        self, manager_id: str, status: str, now: dt.datetime, limit: int, offset: int
    ) -> dict[str, Any]:
        """A manager's callbacks, soonest due first: `open`, `overdue`, `done` or `all`."""
        found = self.repo.db[VIEW].find({"manager_id": manager_id}).sort("due_at", ASCENDING)
        docs = await all_of(found.limit(MAX_LISTED))
        outcomes = await self._outcomes([d["_id"] for d in docs])
        items = [view(d, outcomes.get(d["_id"]), now) for d in docs]
        if status == "open":
            items = [i for i in items if i["status"] == "OPEN"]
        elif status == "overdue":
            items = [i for i in items if i["overdue"]]
        elif status == "done":
            items = [i for i in items if i["status"] == "DONE"]
        items.sort(key=lambda i: (not i["overdue"], i["planned_on"] or "", i["customer_id"]))
        return {"items": items[offset : offset + limit], "total": len(items)}

    async def one(self, callback_id: str, now: dt.datetime) -> dict[str, Any]:
        doc = await self.repo.db[VIEW].find_one({"_id": callback_id})
        if doc is None:
            raise CallbackNotFound(callback_id)
        return view(doc, (await self._outcomes([callback_id])).get(callback_id), now)

    async def done(
        self, callback_id: str, outcome: str, notes: str, by: str, at: dt.datetime
    ) -> dict[str, Any]:
        """Record the outcome once; the same outcome again answers as the first time."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome is one of {', '.join(OUTCOMES)}")
        doc = await self.repo.db[VIEW].find_one({"_id": callback_id})
        if doc is None:
            raise CallbackNotFound(callback_id)
        at = _utc(at).replace(microsecond=at.microsecond // 1000 * 1000)  # the store keeps ms
        record = {
            "_id": callback_id,
            "customer_id": doc["customer_id"],
            "manager_id": doc.get("manager_id"),
            "quarter": doc["quarter"],
            "outcome": outcome,
            "notes": notes,
            "by": by,
            "at": at,
        }
        if not await insert_new(self.repo.db[OUTCOME_VIEW], [record]):
            record = (await self._outcomes([callback_id]))[callback_id]
            if record["outcome"] != outcome:
                raise CallbackDone(record)
        kind = doc.get("kind", "CALLBACK")
        contact = {
            "_id": f"callback {callback_id}",
            "task_id": None,
            "customer_id": doc["customer_id"],
            "kind": kind,
            "channel": "ON_SITE" if kind == "VISIT" else "PHONE",
            "direction": "OUTBOUND",
            "content": record["notes"],
            "outcome": record["outcome"],
            "by": record["by"],
            "at": record["at"],
        }
        await self.repo.add_contact(contact)  # once: a replay finds it there
        await tell_pipeline(self.send, contact, kind)
        return view(doc, record, dt.datetime.now(dt.UTC))

    async def report(self, quarter: str, now: dt.datetime) -> dict[str, Any]:
        """A quarter's callbacks and visits by manager: planned, done (by outcome), overdue,
        and how many of them are visits."""
        docs = await all_of(self.repo.db[VIEW].find({"quarter": quarter}))
        outcomes = await self._outcomes([d["_id"] for d in docs])
        rows: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "planned": 0,
                "visits": 0,
                "done": 0,
                "overdue": 0,
                "outcomes": defaultdict(int),
            }
        )
        for d in docs:
            row = rows[d.get("manager_id") or "(unassigned)"]
            row["planned"] += 1
            row["visits"] += d.get("kind") == "VISIT"
            o = outcomes.get(d["_id"])
            if o is not None:
                row["done"] += 1
                row["outcomes"][o["outcome"]] += 1
            elif _utc(d["due_at"]) < now:
                row["overdue"] += 1
        items = [
            {"manager_id": m, **r, "outcomes": dict(r["outcomes"])} for m, r in sorted(rows.items())
        ]
        return {"quarter": quarter, "items": items}
