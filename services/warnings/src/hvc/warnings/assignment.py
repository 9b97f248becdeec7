"""Which account manager works a customer's retention tasks, callbacks and visits (staffing
rule 003).

A customer keeps one manager once assigned. The CRM's manager is preferred; when that manager
already holds the maximum of individual VIP customers (400) or group customers (50: group
accounts, 集团客户 — a group's warnings and visits; a member of a group is a customer of its
own), the customer goes to the least loaded manager known with room. Capacity is a set of
numbered slots per manager and kind, each a unique document: two processes can never fill
one slot twice, so no manager exceeds the caps, whatever races.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateMany
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common.locks import KeyedLocks
from hvc.common.mongo import all_of, insert_new
from hvc.common.streams import View
from hvc.warnings.directory import IN_BATCH, LOOKUP, MANAGER, is_number_key
from hvc.warnings.domain.rules import WarningRules

log = logging.getLogger(__name__)

INDIVIDUAL, GROUP = "I", "G"
# A view document's field that tells `Staffing` its customer is a group account (kind G);
# `Staffing` removes it.
STAFFING_GROUP = "_staffing_group"
# A staffed view document's field that names its customer's number keys in the `lookup`
# view, where `Staffing` writes the manager it gives; `Staffing` removes it.
STAFFING_KEYS = "_staffing_keys"


@dataclass
class Assigner:
    db: AsyncDatabase[Any]
    rules: WarningRules
    known: dict[str, str] = field(default_factory=dict)  # customer -> manager
    # (manager, kind) -> the slot numbers known taken. A slot given back leaves a hole below
    # the others: the next taker tries the lowest number not known taken, not the count.
    taken: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    managers: set[str] = field(default_factory=set)
    locks: KeyedLocks = field(default_factory=KeyedLocks)

    async def load_state(self) -> None:
        """One scan of each collection at start: current assignments and loads."""
        for a in await all_of(self.db["assignments"].find({})):
            self.known[a["_id"]] = a["manager_id"]
            self.managers.add(a["manager_id"])
        for s in await all_of(self.db["manager_slots"].find({})):
            self.taken.setdefault((s["manager_id"], s["kind"]), set()).add(_slot_number(s["_id"]))

    async def manager_of(self, customer_id: str) -> str | None:
        if customer_id in self.known:
            return self.known[customer_id]
        found = await self.db["assignments"].find_one({"_id": customer_id})
        return None if found is None else str(found["manager_id"])

    async def managers_of(self, ids: set[str]) -> dict[str, str | None]:
        """The managers of `ids` (None: not assigned), those not known here read in one `$in`
        per 500 (a customer may have been assigned by the process that held it before)."""
        unknown = sorted(c for c in ids if c not in self.known)
        for i in range(0, len(unknown), IN_BATCH):
            batch = {"_id": {"$in": unknown[i : i + IN_BATCH]}}
            async for a in self.db["assignments"].find(batch, {"manager_id": 1}):
                self.known[str(a["_id"])] = str(a["manager_id"])
        return {c: self.known.get(c) for c in ids}

    def cap(self, kind: str) -> int:
        if kind == GROUP:
            return self.rules.manager_max_groups
        return self.rules.manager_max_individuals

    def note_manager(self, manager_id: str | None) -> None:
        if manager_id:
            self.managers.add(manager_id)

    def _candidates(self, profile: dict[str, Any]) -> tuple[str, str | None, list[str]]:
        """A customer's kind, its CRM's manager, and the managers to try in order: the CRM's,
        then the others least loaded first."""
        kind = GROUP if profile.get("is_group") else INDIVIDUAL
        preferred: str | None = profile.get("manager_id")
        self.note_manager(preferred)
        others = sorted(
            (m for m in self.managers if m != preferred),
            key=lambda m: (len(self.taken.get((m, kind), ())), m),
        )
        return kind, preferred, ([preferred] if preferred else []) + others

    async def manager_for(self, customer_id: str, profile: dict[str, Any]) -> str | None:
        async with self.locks.hold(customer_id):
            return await self._manager_for(customer_id, profile)

    async def _manager_for(self, customer_id: str, profile: dict[str, Any]) -> str | None:
        if customer_id in self.known:
            return self.known[customer_id]
        found = await self.db["assignments"].find_one({"_id": customer_id})
        if found is not None:
            known: str = found["manager_id"]
            self.known[customer_id] = known
            return known
        kind, preferred, candidates = self._candidates(profile)
        for manager in candidates:
            slot = await self._take_slot(manager, kind, customer_id)
            if slot is None:
                continue
            doc = {"_id": customer_id, "manager_id": manager, "kind": kind, "slot": slot}
            if await insert_new(self.db["assignments"], [doc]):
                self.known[customer_id] = manager
                if manager != preferred:
                    log.info(
                        "customer assigned past a full portfolio",
                        extra={"customer_id": customer_id, "manager_id": manager},
                    )
                return manager
            # Another process assigned this customer meanwhile: give the slot back.
            await self.db["manager_slots"].delete_one({"_id": slot})
            self.taken[(manager, kind)].discard(_slot_number(slot))
            return await self._manager_for(customer_id, profile)
        found = await self.db["assignments"].find_one({"_id": customer_id})
        if found is not None:  # assigned by another process while this one found no room
            late: str = found["manager_id"]
            self.known[customer_id] = late
            return late
        log.warning("no manager has room; task left unassigned", extra={"customer_id": customer_id})
        return None

    async def assign_many(self, wanted: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        """The managers of many customers at once (a checkpoint's tasks), with the outcome of
        `manager_for` for each: customers known keep theirs; the others get a slot planned from
        this process's counts (the CRM's manager while it has room, else the least loaded
        with room), all slots in one insert and then all assignments in one. A customer whose
        slot or assignment another process took meanwhile (a duplicate key) goes the way of
        `manager_for`, one by one: the rare case, with the same guarantees."""
        out: dict[str, str | None] = {c: self.known[c] for c in wanted if c in self.known}
        plans: dict[str, tuple[str, str, str]] = {}  # customer -> (manager, kind, slot)
        slow: list[str] = []
        for cid, profile in wanted.items():
            if cid in out:
                continue
            kind, _, candidates = self._candidates(profile)
            for manager in candidates:
                taken = self.taken.setdefault((manager, kind), set())
                n = next((i for i in range(self.cap(kind)) if i not in taken), None)
                if n is not None:
                    taken.add(n)
                    plans[cid] = (manager, kind, _slot_id(manager, kind, n))
                    break
            else:
                slow.append(cid)  # no room known here: `manager_for` looks again
        slots = await insert_new(
            self.db["manager_slots"],
            [
                {"_id": slot, "manager_id": m, "kind": k, "customer_id": cid}
                for cid, (m, k, slot) in plans.items()
            ],
        )
        ours = {cid: plan for cid, plan in plans.items() if plan[2] in slots}
        slow += [cid for cid in plans if cid not in ours]  # a slot another process took
        made = await insert_new(
            self.db["assignments"],
            [
                {"_id": cid, "manager_id": m, "kind": k, "slot": slot}
                for cid, (m, k, slot) in ours.items()
            ],
        )
        for cid, (manager, kind, slot) in ours.items():
            if cid in made:
                self.known[cid] = out[cid] = manager
                continue
            # assigned by another process meanwhile: the slot back, theirs read
            await self.db["manager_slots"].delete_one({"_id": slot})
            self.taken[(manager, kind)].discard(_slot_number(slot))
            slow.append(cid)
        for cid in slow:
            out[cid] = await self.manager_for(cid, wanted[cid])
        return out

    async def _take_slot(self, manager: str, kind: str, customer_id: str) -> str | None:
        cap = self.cap(kind)
        taken = self.taken.setdefault((manager, kind), set())
        for n in range(cap):
            if n in taken:
                continue
            slot = _slot_id(manager, kind, n)
            doc = {"_id": slot, "manager_id": manager, "kind": kind, "customer_id": customer_id}
            taken.add(n)  # ours now, or taken by another process
            if await insert_new(self.db["manager_slots"], [doc]):
                return slot
        return None

    async def loads(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in await all_of(self.db["manager_slots"].find({}, {"manager_id": 1, "kind": 1})):
            entry = out.setdefault(s["manager_id"], {"individuals": 0, "groups": 0})
            entry["groups" if s["kind"] == GROUP else "individuals"] += 1
        return out


def _slot_id(manager: str, kind: str, n: int) -> str:
    return f"{manager}|{kind}|{n:06d}"


def _slot_number(slot_id: str) -> int:
    return int(slot_id.rsplit("|", 1)[1])


class Staffing:
    """Staffing rule 003 for the tasks the stream pipeline opens (hvc.warnings.pipeline), as
    a `before_write` step of its `tasks` view: each task written with a manager (the CRM's)
    or without one goes to the manager the `Assigner` gives its customer, once per customer
    and sticky, with the same capacity slots whatever the replica count. It runs at the
    engine's checkpoint on the view writer's loop and database, and touches the store only
    for a customer it has not seen (the assignment, and a slot the first time, and the
    manager written into the customer's numbers in the `lookup` view, the VIP line's)."""

    def __init__(self, rules: WarningRules) -> None:
        self.rules = rules
        self._assigner: Assigner | None = None
        self._in_lookup: set[str] = set()  # customers whose manager this process wrote there

    async def _on(self, db: AsyncDatabase[Any]) -> Assigner:
        if self._assigner is None:
            assigner = Assigner(db, self.rules)
            await assigner.load_state()
            self._assigner = assigner
        return self._assigner

    async def callers(self, db: AsyncDatabase[Any], views: list[View]) -> list[View]:
        """The `before_write` step of the `lookup` view (hvc.warnings.directory): each
        number's document written carries its customer's retention manager, None for one not
        assigned. Written after the staffed views of the same checkpoint (the pipeline's
        `last_views`), so a customer assigned in it has the manager just given."""
        assigner = await self._on(db)
        managers = await assigner.managers_of(
            {str(v.doc["customer_id"]) for v in views if v.doc is not None and is_number_key(v.id)}
        )
        return [
            v
            if v.doc is None or not is_number_key(v.id)
            else View(
                v.collection, v.id, {**v.doc, MANAGER: managers[str(v.doc["customer_id"])]}, v.mode
            )
            for v in views
        ]

    async def __call__(self, db: AsyncDatabase[Any], views: list[View]) -> list[View]:
        assigner = await self._on(db)
        # The customers' managers at once, each customer once (the first task's profile): a
        # checkpoint with many customers new to this process is two bulk inserts, not three
        # store round trips per customer in turn (`Assigner.assign_many`).
        profiles: dict[str, dict[str, Any]] = {}
        for v in views:
            if v.doc is not None and "customer_id" in v.doc:
                profiles.setdefault(
                    str(v.doc["customer_id"]),
                    {
                        "manager_id": v.doc.get("manager_id"),
                        "is_group": bool(v.doc.get(STAFFING_GROUP)),
                    },
                )
        managers = await assigner.assign_many(profiles)
        await self._into_lookup(db, views, managers)
        out = []
        for v in views:
            if v.doc is None or "customer_id" not in v.doc:
                out.append(v)
                continue
            doc = {k: x for k, x in v.doc.items() if k not in (STAFFING_GROUP, STAFFING_KEYS)}
            doc["manager_id"] = managers[str(doc["customer_id"])]
            out.append(View(v.collection, v.id, doc, v.mode))
        return out

    async def _into_lookup(
        self, db: AsyncDatabase[Any], views: list[View], managers: dict[str, str | None]
    ) -> None:
        """The managers of the checkpoint's customers written into their numbers' `lookup`
        documents (the VIP line's; the keys the pipeline named, `STAFFING_KEYS`), once per
        customer and process: one `$in` update per manager and 500 keys, not one per key (a
        month's close opens tens of thousands of tasks in one checkpoint). After the
        assignments are stored, so a process that dies in between leaves a customer this
        one has not written yet, whose next staffed view writes it (a new process starts
        with none written). Documents that are gone are not recreated."""
        keys: dict[str, list[str]] = {}
        for v in views:
            if v.doc is not None and STAFFING_KEYS in v.doc:
                keys.setdefault(str(v.doc["customer_id"]), list(v.doc[STAFFING_KEYS]))
        by_manager: dict[str, list[str]] = {}
        done = []
        for cid, ks in keys.items():
            manager = managers.get(cid)
            if manager is None or cid in self._in_lookup:
                continue  # no manager yet: a later staffed view tries again
            by_manager.setdefault(manager, []).extend(ks)
            done.append(cid)
        ops = [
            UpdateMany({"_id": {"$in": ks[i : i + IN_BATCH]}}, {"$set": {MANAGER: manager}})
            for manager, ks in by_manager.items()
            for i in range(0, len(ks), IN_BATCH)
        ]
        if ops:
            await db[LOOKUP].bulk_write(ops, ordered=False)
        self._in_lookup.update(done)
