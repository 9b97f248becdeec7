"""What the HTTP side reads of each customer beyond the signals: the CRM profile (account
manager, group, do-not-disturb) and the tier in force, from the `profiles` view the pipeline
writes; and the customers a phone number or a name finds, from its `lookup` view.

The `lookup` view has one small document per number and per name of a customer, found by
`_id` range (the one index every store answers fast, FerretDB included):
- `n <reversed number> <customer>`: a full number is a prefix of its reversed form, and so are
  its last digits (a hotline agent's "the number ends in 8000");
- `m <name> <customer>`: a name, or its first characters (a surname).
The customer id ends each key: a number that moves to another customer is two documents for
a while, never one overwritten in the wrong order by two partitions.

Each number's document also carries what the VIP line answers (`caller_doc`): the
customer's tier in force, CRM manager and do-not-disturb, written by the pipeline whenever
they change, and the retention manager (`MANAGER`), which the view writer's staffing step adds
as it writes the document, and writes into it when it gives the customer a manager
(hvc.warnings.assignment.Staffing), and the complaints whose clocks run (`OPEN`), as the
complaints service publishes them on hvc.complaints.v1. A caller is then one read of the
store, in one service. A name's document is the customer alone. A number's document written
before these fields has none of them; the lookup reads such a customer's profile and
assignment, as it did before, and the gateway asks the complaints service."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

LOOKUP = "lookup"
DIGITS = re.compile(r"^\+?[0-9]{4,20}$")
MIN_TAIL = 4  # the fewest last digits a number search takes (fewer would list thousands)
MAX_NAME = 64
# Above every character of a key in UTF-8 order (the store compares strings bytewise).
TOP = "\U0010ffff"


def lookup_keys(customer_id: str, profile: dict[str, Any]) -> set[str]:
    """The `lookup` view's keys of a customer's profile."""
    keys = {f"n {_digits(n)[::-1]} {customer_id}" for n in profile.get("msisdns") or [] if n}
    name = " ".join(str(profile.get("name") or "").split())[:MAX_NAME]
    if name:
        keys.add(f"m {name} {customer_id}")
    return keys


# The retention manager (staffing rule 003) in a `lookup` document; present, None included,
# in every document the staffing step wrote.
MANAGER = "manager_id"
# The customer's complaints whose clocks run, `[{"id", "status", "sla_state"}]` by id, as the
# complaints service's own `open_complaints` view has them.
OPEN = "open_complaints"


def caller_doc(
    customer_id: str, profile: dict[str, Any], open_complaints: list[dict[str, str]]
) -> dict[str, Any]:
    """A `lookup` document as the pipeline writes it, from the profile with its tier in force
    and the open complaints: what the VIP line answers of the customer, but the retention
    manager (the staffing step's)."""
    return {
        "customer_id": customer_id,
        "tier": profile.get("tier") or "NONE",
        "crm_manager_id": profile.get("manager_id"),
        "do_not_disturb": bool(profile.get("do_not_disturb")),
        OPEN: open_complaints,
    }


def _caller(
    customer_id: str,
    tier: str | None,
    crm_manager: str | None,
    manager: str | None,
    do_not_disturb: Any,
    open_complaints: Any = None,
) -> dict[str, Any]:
    """One customer of the VIP line's answer, from a `lookup` document or (written before
    its fields) the profile; `OPEN` only when the document carries it (else the gateway
    asks the complaints service)."""
    out: dict[str, Any] = {
        "customer_id": customer_id,
        "tier": tier or "NONE",
        "crm_manager_id": crm_manager,
        "manager_id": manager,
        "do_not_disturb": bool(do_not_disturb),
    }
    if open_complaints is not None:
        out[OPEN] = list(open_complaints)
    return out


def is_number_key(key: str) -> bool:
    return key.startswith("n ")


def _digits(number: str) -> str:
    """The national number: digits only, without the country code (`+86 138…`, `0086…`)."""
    digits = "".join(c for c in str(number) if c.isdigit())
    if digits.startswith("0086") and len(digits) > 13:
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def caller_range(number: str) -> tuple[str, str]:
    """The `_id` range of the customers holding exactly `number` (a calling number)."""
    digits = _digits(number)
    if not DIGITS.match(number.strip()) or len(digits) < MIN_TAIL:
        raise ValueError("a calling number has 4 to 20 digits")
    prefix = f"n {digits[::-1]} "  # the space: this number, not a longer one ending in it
    return prefix, prefix + TOP


def number_range(number: str) -> tuple[str, str]:
    """The `_id` range of the customers whose numbers end in `number` (4 digits or more)."""
    digits = _digits(number)
    if not DIGITS.match(number.strip()) or len(digits) < MIN_TAIL:
        raise ValueError(f"a number search takes {MIN_TAIL} to 20 digits")
    prefix = f"n {digits[::-1]}"
    return prefix, prefix + TOP


def name_range(name: str) -> tuple[str, str]:
    """The `_id` range of the customers whose names start with `name`."""
    clean = " ".join(name.split())[:MAX_NAME]
    if not clean:
        raise ValueError("a name search takes at least one character")
    prefix = f"m {clean}"
    return prefix, prefix + TOP


def customer_of(key: str) -> str:
    return key.rsplit(" ", 1)[1]


IN_BATCH = 500  # ids in one `$in` (the local store's index patch takes up to 500)


class Lookups(Protocol):
    """A customer's profile and tier in force, as the HTTP side reads them."""

    async def profile_of(self, customer_id: str) -> dict[str, Any]: ...

    async def profiles_of(self, ids: list[str]) -> dict[str, dict[str, Any]]: ...

    async def tier_of(self, customer_id: str) -> str: ...

    async def find(
        self,
        *,
        msisdn: str | None = None,
        name: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]: ...


class ViewDirectory:
    """The lookups from the `profiles` and `lookup` views the stream pipeline writes (hvc.
    warnings.pipeline): every replica answers the same, whichever partitions it holds."""

    def __init__(self, db: Any) -> None:
        self.profiles = db["profiles"]
        self.lookup = db[LOOKUP]

    async def profile_of(self, customer_id: str) -> dict[str, Any]:
        found = await self.profiles.find_one({"_id": customer_id})
        return dict(found or {})

    async def profiles_of(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Several customers' profiles in one read per 500 (`_id` `$in`; the local store takes
        it by its `_id` index too, a patch of ours); a customer without one gets `{}`."""
        out: dict[str, dict[str, Any]] = {c: {} for c in ids}
        unique = list(out)
        for i in range(0, len(unique), IN_BATCH):
            async for doc in self.profiles.find({"_id": {"$in": unique[i : i + IN_BATCH]}}):
                out[str(doc["_id"])] = dict(doc)
        return out

    async def tier_of(self, customer_id: str) -> str:
        return str((await self.profile_of(customer_id)).get("tier") or "NONE")

    async def find(
        self,
        *,
        msisdn: str | None = None,
        name: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The profiles of the customers a number (or its last digits) or a name (or its
        first characters) finds, at most `limit`, in key order; ValueError for a search that
        is too short (a calling number, exactly: `caller_range`, `ids_in`, `holding`)."""
        if msisdn is not None:
            low, high = number_range(msisdn)
        else:
            low, high = name_range(name or "")
        return await self.holding(await self.ids_in(low, high, limit), low, high)

    async def ids_in(self, low: str, high: str, limit: int) -> list[str]:
        """The customers of the `lookup` keys in [low, high), in key order, at most `limit`."""
        ids: list[str] = []
        async for d in (
            self.lookup.find({"_id": {"$gte": low, "$lt": high}}, {"_id": 1})
            .sort("_id", 1)
            .limit(limit * 2)
        ):
            cid = customer_of(d["_id"])
            if cid not in ids:
                ids.append(cid)
        return ids[:limit]

    async def callers(
        self,
        number: str,
        manager_of: Callable[[str], Awaitable[str | None]],
        limit: int = 5,
    ) -> list[dict[str, Any]]:
        """Who holds exactly the calling `number`, as the VIP line answers: customer, tier, CRM
        manager, retention manager, do-not-disturb and, from documents that carry them, the
        open complaints; ValueError for a number that is not one.

        One read of the `lookup` range. Its documents are written with the profile they come
        from, in the same checkpoint as the `profiles` view, and removed in the one where the
        profile gives the number up, so a document found is the customer's as of that
        checkpoint. Customers whose documents predate the VIP fields (no `MANAGER`) are read
        as before: their profiles (which must still hold the number) and, by `manager_of`,
        their retention managers."""
        low, high = caller_range(number)
        docs: dict[str, dict[str, Any]] = {}
        async for d in (
            self.lookup.find({"_id": {"$gte": low, "$lt": high}}).sort("_id", 1).limit(limit)
        ):
            docs.setdefault(customer_of(d["_id"]), d)
        out = {
            cid: _caller(
                cid,
                d.get("tier"),
                d.get("crm_manager_id"),
                d[MANAGER],
                d.get("do_not_disturb"),
                d.get(OPEN),
            )
            for cid, d in docs.items()
            if MANAGER in d
        }
        older = [cid for cid in docs if cid not in out]
        if older:
            found, managers = await asyncio.gather(
                self.holding(older, low, high),
                asyncio.gather(*(manager_of(c) for c in older)),
            )
            manager = dict(zip(older, managers, strict=True))
            for p in found:
                cid = str(p["_id"])
                out[cid] = _caller(
                    cid, p.get("tier"), p.get("manager_id"), manager[cid], p.get("do_not_disturb")
                )
        return [out[c] for c in docs if c in out]

    async def holding(self, ids: list[str], low: str, high: str) -> list[dict[str, Any]]:
        """The profiles of `ids` that still hold a key in [low, high): a key written before
        its profile changed (a number given up, moments before the stream removes it) finds
        nobody. One find by `_id` each (an `$in` is not an index lookup on every store)."""
        found = await asyncio.gather(*(self.profiles.find_one({"_id": c}) for c in ids))
        return [
            dict(d)
            for d in found
            if d is not None and any(low <= k < high for k in lookup_keys(str(d["_id"]), d))
        ]
