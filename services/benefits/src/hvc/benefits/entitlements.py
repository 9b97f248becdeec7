"""Entitlements: claims (idempotent, within quotas), grants and revocations on tier changes,
expiry of claimed grants. Every state change is a ledger entry and an event on
hvc.benefits.v1.

Quotas: the n-th claim of a (customer, benefit, period) is the ledger entry
"<customer>|CLAIM|<code>|<period>|<n>", n below the quota; claims race for the lowest free n,
and a unique `_id` decides each race, so 50 concurrent claims against a quota of 6 make exactly
6 entries. A claim's answer is kept under its Idempotency-Key: a replay gets the first answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvc.benefits import events
from hvc.benefits.directory import Directory
from hvc.benefits.domain.catalogue import CLAIMABLE, Catalogue
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


def _stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y%m%dT%H%M%S")


@dataclass
class Entitlements:
    ledger: Ledger
    catalogue: Catalogue
    directory: Directory
    now: Callable[[], dt.datetime]
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    expiring: dict[str, tuple[dt.datetime, str]] = field(default_factory=dict)  # -> (to, tier)
    started: bool = False
    # An unanswered claim older than this was cut short (its process died, or the store went
    # away mid-claim): a retry of its key takes it over instead of waiting for ever.
    claim_lease: dt.timedelta = dt.timedelta(seconds=30)

    # -- claims ----------------------------------------------------------------------------

    def period(self, code: str, tier: str, tier_since: int, at: dt.datetime) -> str:
        kind = self.catalogue.benefits[code].kind
        if kind == "yearly_quota":
            return str(at.astimezone(self.catalogue.zone).year)
        if kind == "per_tier_period":
            return f"{tier}@{_stamp(tier_since)}"
        return ""

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
        tier, since = self.directory.tier(customer_id, now)
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
                if valid_to is not None:
                    self.expiring[slot] = (valid_to, tier)
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
                if e.get("valid_to") is not None:
                    self.expiring[e["_id"]] = (e["valid_to"], e["tier"])
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
        tier, since = self.directory.tier(customer_id, now)
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

    # -- tier changes ------------------------------------------------------------------------

    async def tier_changed(
        self, customer_id: str, old: str, new: str, effective: dt.datetime, event_id: str
    ) -> None:
        """Grant what the new tier carries for its period; revoke the unclaimed rest of what
        the old tier carried and the new one does not. Claimed grants stay valid."""
        effective = _ms(effective)
        since = int(effective.timestamp())
        for code, b in sorted(self.catalogue.benefits.items()):
            if b.kind not in ("yearly_quota", "per_tier_period"):
                continue
            if b.eligible(new):
                qty = b.quota.get(new, 0) if b.kind == "yearly_quota" else b.quantity[new]
                period = self.period(code, new, since, effective)
                gid = f"{customer_id}|GRANT|{code}|{period}|{new}"
                msg = events.benefit(
                    "benefit_granted",
                    gid,
                    customer_id,
                    effective,
                    grant_id=gid,
                    code=code,
                    tier=new,
                    quantity=qty,
                    valid_from=effective,
                )
                await self.ledger.record(
                    {
                        "_id": gid,
                        "kind": "GRANT",
                        "customer_id": customer_id,
                        "code": code,
                        "period": period,
                        "tier": new,
                        "quantity": qty,
                        "at": effective,
                        "cause": event_id,
                    },
                    events.BENEFITS,
                    customer_id,
                    msg,
                )
            elif b.eligible(old):
                # What the old tier left unclaimed in its period is revoked.
                old_since = self._since_before(customer_id, since)
                period = self.period(code, old, old_since, effective)
                limit = b.quota.get(old, 0) if b.kind == "yearly_quota" else 1
                left = max(0, limit - await self._used(customer_id, code, period))
                gid = f"{customer_id}|GRANT|{code}|{period}|{old}"
                rid = f"{customer_id}|REVOKE|{code}|{period}|{old}|{_stamp(since)}"
                msg = events.benefit(
                    "benefit_revoked",
                    rid,
                    customer_id,
                    effective,
                    grant_id=gid,
                    code=code,
                    tier=old,
                    quantity=left,
                )
                await self.ledger.record(
                    {
                        "_id": rid,
                        "kind": "REVOKE",
                        "customer_id": customer_id,
                        "code": code,
                        "period": period,
                        "tier": old,
                        "quantity": left,
                        "grant_id": gid,
                        "at": effective,
                        "cause": event_id,
                    },
                    events.BENEFITS,
                    customer_id,
                    msg,
                )

    def _since_before(self, customer_id: str, since: int) -> int:
        earlier = [t for t, _ in self.directory.timelines.get(customer_id, ()) if t < since]
        return max(earlier) if earlier else 0

    # -- expiry ------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Expire claimed grants whose validity has passed (BenefitExpired, once each)."""
        if not self.started:
            await self.ledger.republish()
            for c in await self.ledger.open_claims():
                self.expiring[c["_id"]] = (_aware(c["valid_to"]), c["tier"])
            self.started = True
        now = self.now()
        n = 0
        for claim_id, (valid_to, tier) in sorted(self.expiring.items(), key=lambda kv: kv[1][0]):
            if valid_to > now:
                break
            customer_id, _, code, *_ = claim_id.split("|")
            eid = f"{customer_id}|EXPIRE|{claim_id.split('|', 2)[2]}"
            msg = events.benefit(
                "benefit_expired",
                eid,
                customer_id,
                valid_to,
                grant_id=claim_id,
                code=code,
                tier=tier,
                quantity=1,
                valid_to=valid_to,
            )
            await self.ledger.record(
                {
                    "_id": eid,
                    "kind": "EXPIRE",
                    "customer_id": customer_id,
                    "code": code,
                    "claim_id": claim_id,
                    "at": valid_to,
                },
                events.BENEFITS,
                customer_id,
                msg,
            )
            del self.expiring[claim_id]
            n += 1
        return n


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
