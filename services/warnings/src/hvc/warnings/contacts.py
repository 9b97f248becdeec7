"""Contact history per customer, and the rules for outbound contact (DOMAIN §2): never a
customer who asked not to be disturbed, and at most one outbound contact per 7 days unless
the task's warning is of an exempt level (level 1 by default)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.common.locks import KeyedLocks
from hvc.events.v1 import warnings_pb2
from hvc.warnings.directory import Lookups
from hvc.warnings.documents import TOPIC
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.repository import Repository
from hvc.warnings.tasks import TaskNotFound

CHANNELS = ("PHONE", "SMS", "VISIT", "WECHAT", "EMAIL", "APP")
DIRECTIONS = ("OUTBOUND", "INBOUND")


class ContactRefused(Exception):
    def __init__(self, reason: str, detail: str, retry_after: dt.datetime | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.retry_after = reason, detail, retry_after


class ContactIdTaken(Exception):
    pass


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d.astimezone(dt.UTC)


async def tell_pipeline(send: Send | None, doc: dict[str, Any], kind: str) -> None:
    """An outbound contact recorded here, to the pipeline (ContactLogged on hvc.warnings.v1,
    keyed by the customer), whose care touches count it in the contact cap. Sent again on a
    replay of the same contact (the pipeline keeps the latest instant: idempotent)."""
    if send is None or doc.get("direction", "OUTBOUND") != "OUTBOUND":
        return
    cid = str(doc["customer_id"])
    at = _utc(doc["at"])
    m = warnings_pb2.WarningEvent(event_id=f"contact-{doc['_id']}", customer_id=cid)
    m.occurred_at.FromDatetime(at)
    c = m.contact_logged
    c.contact_id, c.channel, c.direction, c.kind = (
        str(doc["_id"]),
        str(doc.get("channel") or ""),
        "OUTBOUND",
        kind,
    )
    c.at.FromDatetime(at)
    await send(TOPIC, cid.encode(), codec_for(TOPIC).serialize(m), [])


def view(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "_id"}
    out["contact_id"] = doc["_id"]
    out["at"] = _utc(doc["at"]).isoformat()
    return out


@dataclass
class Contacts:
    repo: Repository
    rules: WarningRules
    directory: Lookups
    send: Send | None = None  # None: the pipeline is not told (a test of the rules alone)
    locks: KeyedLocks = field(default_factory=KeyedLocks)

    async def record(
        self,
        task_id: str,
        contact_id: str,
        *,
        channel: str,
        direction: str,
        content: str,
        outcome: str,
        by: str,
        at: dt.datetime,
    ) -> tuple[dict[str, Any], bool]:
        """Record a contact; returns (contact, created). A replay of the same contact id
        for the same task answers with the first record."""
        task = await self.repo.task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        cid = task["customer_id"]
        at = _utc(at).replace(microsecond=at.microsecond // 1000 * 1000)  # the store keeps ms
        async with self.locks.hold(cid):
            existing = await self.repo.contact(contact_id)
            if existing is not None:
                if existing["task_id"] != task_id:
                    raise ContactIdTaken(contact_id)
                await tell_pipeline(self.send, existing, "CONTACT")  # its first try may not have
                return view(existing), False
            if direction == "OUTBOUND":
                await self._check_outbound(cid, task["level"], at)
            doc = {
                "_id": contact_id,
                "task_id": task_id,
                "customer_id": cid,
                "channel": channel,
                "direction": direction,
                "content": content,
                "outcome": outcome,
                "by": by,
                "at": at,
            }
            if not await self.repo.add_contact(doc):
                return await self.record(
                    task_id,
                    contact_id,
                    channel=channel,
                    direction=direction,
                    content=content,
                    outcome=outcome,
                    by=by,
                    at=at,
                )
            await tell_pipeline(self.send, doc, "CONTACT")
            return view(doc), True

    async def _check_outbound(self, customer_id: str, level: int, at: dt.datetime) -> None:
        if (await self.directory.profile_of(customer_id)).get("do_not_disturb"):
            raise ContactRefused(
                "do-not-disturb", f"customer {customer_id} asked not to be contacted"
            )
        if level in self.rules.contact_cap_exempt_levels:
            return
        last = await self.repo.last_outbound(customer_id)
        if last is None:
            return
        interval = dt.timedelta(days=self.rules.contact_min_interval_days)
        next_allowed = _utc(last["at"]) + interval
        if at < next_allowed:
            raise ContactRefused(
                "frequency-cap",
                f"customer {customer_id} was contacted at {_utc(last['at']).isoformat()}; "
                f"at most one outbound contact per {self.rules.contact_min_interval_days} days",
                next_allowed,
            )

    async def history(self, customer_id: str, limit: int, offset: int) -> dict[str, Any]:
        docs, total = await self.repo.contacts_of(customer_id, limit, offset)
        return {"items": [view(d) for d in docs], "total": total, "limit": limit, "offset": offset}
