"""Entitlements as the HTTP side sees them: claims (idempotent, within quotas) and balances.
Grants, revocations, expiries, commands and notices are the stream's (hvc.benefits.pipeline).

Quotas: the n-th claim of a (customer, benefit, period) is the ledger entry
"<customer>|CLAIM|<code>|<period>|<n>", n below the quota; claims race for the lowest free n,
and a unique `_id` decides each race, so 50 concurrent claims against a quota of 6 make exactly
6 entries, whichever replica answers each. A claim's answer is kept under its Idempotency-Key:
a replay gets the first answer. The tier a claim is judged by is the one in force in the
`tiers` view, which the stream writes as it decides (one lookup by `_id`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvc.benefits import events
from hvc.benefits.domain.catalogue import CLAIMABLE, Catalogue
from hvc.benefits.domain.rules import tier_at
from hvc.benefits.ledger import Ledger
from hvc.common.locks import KeyedLocks
from hvc.common.mongo import insert_new

log = logging.getLogger(__name__)


class ClaimInProgress(RuntimeError):
    pass


class KeyReused(RuntimeError):
    pass


def _ms(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y%m%dT%H%M%S")


def period_of(catalogue: Catalogue, code: str, tier: str, tier_since: int, at: dt.datetime) -> str:
    """The period a benefit's quota counts in: the local year, or the tier's time in force."""
    kind = catalogue.benefits[code].kind
    if kind == "yearly_quota":
        return str(at.astimezone(catalogue.zone).year)
    if kind == "per_tier_period":
        return f"{tier}@{stamp(tier_since)}"
    return ""


@dataclass
class Entitlements:
    ledger: Ledger
    catalogue: Catalogue
    now: Callable[[], dt.datetime]
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    # An unanswered claim older than this was cut short (its process died, or the store went
    # away mid-claim): a retry of its key takes it over instead of waiting for ever.
    claim_lease: dt.timedelta = dt.timedelta(seconds=30)

    async def tier(self, customer_id: str, at: dt.datetime) -> tuple[str, int]:
        """(tier, in force since epoch s) at `at`, by the stream's `tiers` view."""
        doc = await self.ledger.db["tiers"].find_one({"_id": customer_id})
        timeline = sorted((int(t), x) for t, x in ((doc or {}).get("timeline") or {}).items())
        return tier_at(timeline, int(at.timestamp()))

    def period(self, code: str, tier: str, tier_since: int, at: dt.datetime) -> str:
        return period_of(self.catalogue, code, tier, tier_since, at)

    async def claim(self, customer_id: str, code: str, key: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body). 201 granted; 409 refused (not claimable, not eligible, quota
        used); the same Idempotency-Key again answers the same."""
        requests = self.ledger.db["claim_requests"]
        rid = f"{customer_id}|{code}|{key}"
        async with self.locks.hold(rid):
            first = await requests.find_one({"_id": rid})
            resumed = False
            if first is not None:
                if first.get("status") is not None:
                    return first["status"], first["body"]
                if self.now() - first["at"] < self.claim_lease:
                    raise ClaimInProgress(key)
                # Taken over by exactly one retry: the one whose conditional update wins.
                taken = await requests.update_one(
                    {"_id": rid, "at": first["at"], "status": {"$exists": False}},
                    {"$set": {"at": self.now()}},
                )
                if taken.modified_count != 1:
                    raise ClaimInProgress(key)
                resumed = True
            elif not await insert_new(requests, [{"_id": rid, "at": self.now()}]):
                raise ClaimInProgress(key)  # another process holds this key right now
            status, body = (await self._resume(customer_id, code, key) if resumed else None) or (
                await self._claim(customer_id, code, key)
            )
            await requests.update_one({"_id": rid}, {"$set": {"status": status, "body": body}})
            return status, body

    async def _claim(self, customer_id: str, code: str, key: str) -> tuple[int, dict[str, Any]]:
        benefit = self.catalogue.benefits.get(code)
        if benefit is None or benefit.kind not in CLAIMABLE:
            return 409, _refusal("not-claimable", f"{code} is not a benefit one claims")
        now = _ms(self.now())
        tier, since = await self.tier(customer_id, now)
        if not benefit.eligible(tier):
            return 409, _refusal(
                "not-eligible", f"{code} is not a benefit of tier {tier}", tier=tier
            )
        period = self.period(code, tier, since, now)
        if benefit.kind == "unlimited":
            slots = [f"{customer_id}|CLAIM|{code}|{key}"]
            quantity = 1
        else:
            limit = benefit.quota.get(tier, 0) if benefit.kind == "yearly_quota" else 1
            taken = await self._used(customer_id, code, period)
            slots = [f"{customer_id}|CLAIM|{code}|{period}|{n:03d}" for n in range(taken, limit)]
            quantity = benefit.quantity.get(tier, 1) if benefit.kind == "per_tier_period" else 1
        valid_to = now + dt.timedelta(days=benefit.valid_days) if benefit.valid_days else None
        for slot in slots:
            entry = {
                "_id": slot,
                "kind": "CLAIM",
                "customer_id": customer_id,
                "code": code,
                "period": period,
                "tier": tier,
                "quantity": quantity,
                "valid_from": now,
                "valid_to": valid_to,
                "idempotency_key": key,
                "at": now,
            }
            message = events.benefit(
                "benefit_claimed",
                slot,
                customer_id,
                now,
                grant_id=slot,
                code=code,
                tier=tier,
                quantity=quantity,
                valid_from=now,
                valid_to=valid_to,
            )
            if await self.ledger.record(
                entry, events.BENEFITS, customer_id, message, contested=True
            ):
                return 201, self._answer(entry, await self._used(customer_id, code, period))
        return 409, _refusal(
            "quota-exhausted", f"{code}: the quota of tier {tier} for {period} is used", tier=tier
        )

    async def _resume(
        self, customer_id: str, code: str, key: str
    ) -> tuple[int, dict[str, Any]] | None:
        """The answer of a claim cut short after its entry was written (published now if it
        was not): that entry, not a second one; None if it never got that far."""
        for e in await self.ledger.of(customer_id):
            if e["kind"] == "CLAIM" and e["code"] == code and e.get("idempotency_key") == key:
                await self.ledger.ensure_published(e["_id"])
                used = await self._used(customer_id, code, e["period"])
                return 201, self._answer(e, used)
        return None

    def _answer(self, entry: dict[str, Any], used: int) -> dict[str, Any]:
        """The 201 body of a claim entry."""
        benefit = self.catalogue.benefits[entry["code"]]
        valid_to = entry["valid_to"]
        body = {
            "claim_id": entry["_id"],
            "code": entry["code"],
            "tier": entry["tier"],
            "quantity": entry["quantity"],
            "valid_from": entry["valid_from"].isoformat(),
            "valid_to": valid_to.isoformat() if valid_to else None,
            "period": entry["period"] or None,
        }
        if benefit.kind == "yearly_quota":
            body["remaining"] = max(0, benefit.quota[entry["tier"]] - used)
        return body

    async def _used(self, customer_id: str, code: str, period: str) -> int:
        prefix = f"{customer_id}|CLAIM|{code}|{period}|"
        return sum(1 for e in await self.ledger.of(customer_id) if e["_id"].startswith(prefix))

    # -- balances --------------------------------------------------------------------------

    async def balances(self, customer_id: str) -> dict[str, Any]:
        now = self.now()
        tier, since = await self.tier(customer_id, now)
        entries = await self.ledger.of(customer_id)
        expired = {e["claim_id"] for e in entries if e["kind"] == "EXPIRE"}
        out = []
        for code, b in sorted(self.catalogue.benefits.items()):
            row: dict[str, Any] = {"code": code, "kind": b.kind, "eligible": b.eligible(tier)}
            if b.kind in ("yearly_quota", "per_tier_period"):
                period = self.period(code, tier, since, now)
                prefix = f"{customer_id}|CLAIM|{code}|{period}|"
                used = sum(1 for e in entries if e["_id"].startswith(prefix))
                limit = b.quota.get(tier, 0) if b.kind == "yearly_quota" else int(b.eligible(tier))
                row |= {
                    "period": period,
                    "quota": limit,
                    "used": used,
                    "remaining": max(0, limit - used),
                }
            if b.kind == "per_tier_period":
                row["quantity"] = b.quantity.get(tier, 0)
            if b.kind == "automatic" and b.hours:
                row["hours"] = b.hours.get(tier)
            row["active_claims"] = [
                {"claim_id": e["_id"], "valid_to": _iso(e.get("valid_to"))}
                for e in entries
                if e["kind"] == "CLAIM"
                and e["code"] == code
                and e["_id"] not in expired
                and (e.get("valid_to") is None or _aware(e["valid_to"]) > now)
            ]
            out.append(row)
        return {
            "customer_id": customer_id,
            "tier": tier,
            "catalogue": self.catalogue.version,
            "benefits": out,
        }

    async def history(self, customer_id: str) -> list[dict[str, Any]]:
        return [
            {
                k: (_iso(v) if isinstance(v, dt.datetime) else v)
                for k, v in e.items()
                if k not in ("topic",)
            }
            for e in await self.ledger.of(customer_id)
        ]


def _refusal(reason: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Claim refused",
        "status": 409,
        "detail": detail,
        "reason": reason,
        **extra,
    }


def _aware(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _iso(t: Any) -> Any:
    return _aware(t).isoformat() if isinstance(t, dt.datetime) else t
