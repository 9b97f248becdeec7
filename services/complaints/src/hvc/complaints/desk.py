"""The complaints desk: filing, transitions, work orders, tier changes and the SLA timers.

Every change is a new document in `changes` (its sequence number is the lock), then one
ComplaintUpdated, then the read model. Milestones (at risk, breached, each escalation) are
found by the timer loop from the complaint's clocks and emitted once each: claimed in
`milestones` before they are published. After a crash, what was written but not published is
published again with its original event id.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.common.locks import KeyedLocks
from hvc.complaints.domain.lifecycle import (
    STOPPED,
    Complaint,
    InvalidTransition,
    check_transition,
    fold,
)
from hvc.complaints.domain.policy import SlaPolicy, policy_at
from hvc.complaints.repository import Repository, Tier, change_id, later, tier_at
from hvc.events.v1 import complaints_pb2

log = logging.getLogger(__name__)
TOPIC = "hvc.complaints.v1"
ALL_KNOWN = 2**62  # a filing not published on the topic: every decision here counts as known
TMF_STATUS = {
    "RECEIVED": "acknowledged",
    "ACKNOWLEDGED": "acknowledged",
    "DISPATCHED": "inProgress",
    "IN_PROGRESS": "inProgress",
    "PENDING_CUSTOMER": "pending",
    "RESOLVED": "resolved",
    "CALLBACK_DONE": "resolved",
    "CLOSED": "closed",
    "REOPENED": "inProgress",
}


class NotFound(LookupError):
    pass


def _ms(t: dt.datetime) -> dt.datetime:
    """The store keeps milliseconds: decide on what will be read back."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def severity(c: Complaint) -> str:
    if c.channel in c.policy.regulator_channels:
        return "critical"
    return "major" if c.tier in ("DIAMOND", "PLATINUM", "GOLD") else "minor"


def view(c: Complaint, now: dt.datetime, reached: Sequence[str] = ()) -> dict[str, Any]:
    """The complaint as the API shows it: TMF621 Trouble Ticket names, plus the SLA block."""
    state, level = c.sla(now)
    fr_due, res_due = c.due_at("first_response", now), c.due_at("resolution", now)
    return {
        "_id": c.complaint_id,
        "_seq": c.seq,  # the last change this view folds (start-up finds stale views by it)
        "id": c.complaint_id,
        "href": f"/v1/complaints/{c.complaint_id}",
        "customer_id": c.customer_id,
        "relatedParty": [{"id": c.customer_id, "role": "customer"}],
        "channel": {"name": c.channel},
        "ticketType": c.category,
        "description": c.text,
        "severity": severity(c),
        "status": c.status,
        "tmfStatus": TMF_STATUS[c.status],
        "creationDate": c.filed_at,
        "lastUpdate": c.updated_at,
        "expectedResolutionDate": res_due,
        "resolutionDate": next((t for s, t in reversed(c.history) if s == "RESOLVED"), None)
        if c.status in STOPPED
        else None,
        "statusChangeHistory": [{"status": s, "changeDate": t} for s, t in c.history],
        "workOrders": sorted(c.work_orders.values(), key=lambda w: w["dispatched_at"]),
        "satisfaction": c.satisfaction,
        "sla": {
            "policyVersion": c.policy.version,
            "tier": c.tier,
            "targets": c.targets.model_dump(),
            "state": state,
            "escalationLevel": level,
            "escalatedTo": c.policy.escalation_levels[level],
            "firstResponseDue": fr_due,
            "resolutionDue": res_due,
            "firstResponseSeconds": c.elapsed("first_response", now),
            "firstResolutionSeconds": c.first_resolution_s(),
            "finalResolutionSeconds": c.final_resolution_s(),
            "breached": state == "BREACHED",
            "milestones": sorted(reached),
        },
    }


def json_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored or fresh view with instants as ISO strings, without the store's own fields
    (`_id`, `_seq`)."""

    def conv(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return (v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v).isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items() if not k.startswith("_")}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    out: dict[str, Any] = conv(doc)
    return out


@dataclass
class Desk:
    repo: Repository
    policies: list[SlaPolicy]
    send: Send
    now: Callable[[], dt.datetime]
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    open: dict[str, Complaint] = field(default_factory=dict)  # complaints the timers watch
    claimed: dict[str, set[str]] = field(default_factory=dict)  # milestones emitted
    next_at: dict[str, dt.datetime] = field(default_factory=dict)
    recovered: bool = False

    # -- start-up ------------------------------------------------------------------------

    async def recover(self) -> None:
        """Load open complaints and their emitted milestones; publish what a crash left
        written but unpublished."""
        for cid in await self.repo.open_ids():
            c = await self._load(cid)
            if c is not None:
                self._watch(c)
        published = await self.repo.published_ids()
        for m in await self.repo.all_milestones():
            cid = m["complaint_id"]
            self.claimed.setdefault(cid, set()).add(m["key"])
            if m["_id"] not in published:
                await self._publish_milestone(cid, m)
        last: dict[str, int] = {}
        behind: set[str] = set()  # complaints with a change written but not published
        for ch_id in await self.repo.all_change_ids():
            cid, seq = ch_id.rsplit(" ", 1)
            last[cid] = max(last.get(cid, -1), int(seq))
            if ch_id not in published:
                behind.add(cid)
        for cid in sorted(behind):
            await self._catch_up(cid, await self.repo.changes_of(cid))
        # A crash after a change was published and before its view was written: the view
        # is missing or behind, and the complaint (still open) would have no timers.
        seen = await self.repo.view_seqs()
        for cid, n in sorted(last.items()):
            if seen.get(cid, -1) < n:
                c = await self._load(cid)
                if c is not None:
                    await self.repo.put_view(await self._view(c))
                    self._watch(c)

    async def _load(self, complaint_id: str) -> Complaint | None:
        changes = await self.repo.changes_of(complaint_id)
        return fold(changes, self.policies) if changes else None

    # -- filing and changes --------------------------------------------------------------

    async def file(
        self,
        *,
        complaint_id: str,
        customer_id: str,
        channel: str,
        category: str,
        text: str,
        filed_at: dt.datetime,
        known_ms: int | None = None,
    ) -> dict[str, Any]:
        """File once: a redelivered filing finds the complaint there and changes nothing.
        `known_ms`: when the filing was published; the tier is the one in force at `filed_at`
        by the decisions whose cause was published by then (None: every decision here)."""
        v = await self._file(
            complaint_id, customer_id, channel, category, text, _ms(filed_at), known_ms
        )
        await self.tick()  # filed late: milestones may be due already
        return v

    async def _file(
        self,
        complaint_id: str,
        customer_id: str,
        channel: str,
        category: str,
        text: str,
        filed_at: dt.datetime,
        known_ms: int | None,
    ) -> dict[str, Any]:
        async with self.locks.hold(complaint_id):
            changes = await self.repo.changes_of(complaint_id)
            if not changes:
                tier = tier_at(await self.repo.tiers_of(customer_id), filed_at, _known_by(known_ms))
                zone = self.policies[0].zone
                policy = policy_at(self.policies, filed_at.astimezone(zone).date())
                doc = {
                    "_id": change_id(complaint_id, 0),
                    "kind": "FILED",
                    "seq": 0,
                    "at": filed_at,
                    "complaint_id": complaint_id,
                    "customer_id": customer_id,
                    "channel": channel,
                    "category": category,
                    "text": text,
                    "tier": tier,
                    "known_ms": known_ms,
                    "policy_version": policy.version,
                    "targets": policy.targets_for(tier, channel).model_dump(),
                }
                view = await self._record(complaint_id, doc, None)
            else:  # a redelivery: nothing new, unless an earlier try was cut short
                await self._catch_up(complaint_id, changes)
                existing = fold(changes, self.policies)
                view = await self._view(existing)
                if complaint_id not in self.open and existing.status != "CLOSED":
                    # The first try stopped before its view and timers (the store went away)
                    await self.repo.put_view(view)
                    self._watch(existing)
                filed_at, known_ms = existing.filed_at, changes[0].get("known_ms")
            # Decisions that come after the filing (take effect after it, or were caused after
            # it was published) and arrived before it: the same stricter targets as if they
            # had arrived after it (one outcome, whatever the order of the two topics).
            tiers = await self.repo.tiers_of(customer_id)  # again: with any that came meanwhile
            for t in later(tiers, filed_at, _known_by(known_ms)):
                view = await self._tighten(complaint_id, t, tiers) or view
            return view

    async def transition(
        self,
        complaint_id: str,
        to: str,
        *,
        by: str,
        note: str = "",
        satisfaction: int | None = None,
        department: str | None = None,
        transition_id: str | None = None,
    ) -> dict[str, Any]:
        v = await self._transition(
            complaint_id, to, by, note, satisfaction, department, transition_id
        )
        await self.tick()
        return v

    async def _transition(
        self,
        complaint_id: str,
        to: str,
        by: str,
        note: str,
        satisfaction: int | None,
        department: str | None,
        transition_id: str | None,
    ) -> dict[str, Any]:
        async with self.locks.hold(complaint_id):
            changes = await self.repo.changes_of(complaint_id)
            if not changes:
                raise NotFound(complaint_id)
            await self._catch_up(complaint_id, changes)
            if transition_id and any(ch.get("transition_id") == transition_id for ch in changes):
                return await self._view(fold(changes, self.policies))  # a replay
            c = fold(changes, self.policies)
            check_transition(c.status, to)
            if to == "CALLBACK_DONE" and satisfaction is None:
                raise InvalidTransition("a callback records the satisfaction (1-5)")
            if to == "DISPATCHED" and not department:
                raise InvalidTransition("dispatching names the department of the work order")
            seq = c.seq + 1
            at = max(_ms(self.now()), c.updated_at or c.filed_at)
            doc: dict[str, Any] = {
                "_id": change_id(complaint_id, seq),
                "kind": "TRANSITION",
                "seq": seq,
                "at": at,
                "to": to,
                "by": by,
                "note": note,
                "transition_id": transition_id,
                "satisfaction": satisfaction,
            }
            if to == "DISPATCHED":
                doc |= {"department": department, "work_order_id": f"{complaint_id}-WO{seq}"}
            return await self._record(complaint_id, doc, c)

    async def complete_work_order(
        self, complaint_id: str, work_order_id: str, *, by: str, result: str
    ) -> dict[str, Any]:
        async with self.locks.hold(complaint_id):
            changes = await self.repo.changes_of(complaint_id)
            if not changes:
                raise NotFound(complaint_id)
            await self._catch_up(complaint_id, changes)
            c = fold(changes, self.policies)
            wo = c.work_orders.get(work_order_id)
            if wo is None:
                raise NotFound(work_order_id)
            if wo["completed_at"] is not None:
                return await self._view(c)  # done already: a replay
            seq = c.seq + 1
            doc = {
                "_id": change_id(complaint_id, seq),
                "kind": "WORK_ORDER_DONE",
                "seq": seq,
                "at": max(_ms(self.now()), c.updated_at or c.filed_at),
                "work_order_id": work_order_id,
                "by": by,
                "result": result,
            }
            return await self._record(complaint_id, doc, c)

    async def tier_changed(
        self, customer_id: str, tier: str, effective_from: dt.datetime, known_ms: int
    ) -> None:
        """A new tier for a customer with open complaints: the stricter targets apply.
        `known_ms`: when the decision's cause was published."""
        # Recorded before the open complaints are listed: a filing that is not listed yet
        # finds this decision in its own look at the later decisions (_file).
        await self.repo.add_tier(customer_id, tier, _ms(effective_from), known_ms)
        tiers = await self.repo.tiers_of(customer_id)
        stored = [t for t in tiers if t.effective_from == _ms(effective_from)]
        for cid in [k for k, c in self.open.items() if c.customer_id == customer_id]:
            async with self.locks.hold(cid):
                for t in stored:  # as first received (a redelivery keeps the first)
                    await self._tighten(cid, t, tiers)
        await self.tick()  # stricter targets may make milestones due now

    async def _tighten(
        self, complaint_id: str, t: Tier, tiers: list[Tier]
    ) -> dict[str, Any] | None:
        """The complaint under decision `t`'s targets if they are stricter (the complaint's
        lock held; `tiers`: the customer's decisions, `t` among them); None if nothing
        changes."""
        tier, effective_from = t.tier, t.effective_from
        changes = await self.repo.changes_of(complaint_id)
        if not changes:
            return None
        await self._catch_up(complaint_id, changes)
        c = fold(changes, self.policies)
        if c.status in STOPPED or c.tier == tier:
            return None
        known_by = max(t.known_ms, _known_by(changes[0].get("known_ms")))
        if effective_from <= c.filed_at and tier_at(tiers, c.filed_at, known_by) != tier:
            # In force before the filing and superseded by then, among the decisions known
            # when the filing or this decision was (a redelivered or late older decision):
            # the complaint never had that tier.
            return None
        new = c.policy.targets_for(tier, c.channel)
        if c.targets.stricter(new) == c.targets:
            return None  # not stricter: the pinned targets stay
        seq = c.seq + 1
        doc = {
            "_id": change_id(complaint_id, seq),
            "kind": "TIER_CHANGED",
            "seq": seq,
            "at": max(effective_from, c.updated_at or c.filed_at),
            "tier": tier,
            "targets": new.model_dump(),
        }
        return await self._record(complaint_id, doc, c)

    async def _record(
        self, complaint_id: str, doc: dict[str, Any], before: Complaint | None
    ) -> dict[str, Any]:
        if not await self.repo.add_change(doc):
            # Another process wrote this sequence number first: start again from the store.
            raise InvalidTransition("the complaint changed meanwhile; retry")
        c = await self._load(complaint_id)
        assert c is not None
        await self._publish_change(c, doc["_id"], doc["at"])
        v = await self._view(c)
        await self.repo.put_view(v)
        self._watch(c)
        return v

    async def _catch_up(self, complaint_id: str, changes: list[dict[str, Any]]) -> None:
        """Publish the complaint's changes that are written but not published: an earlier
        try was cut short after the store took the change (it went away before answering,
        or the publish failed), and its retry finds the change there. The lock held."""
        done = await self.repo.published_changes_of(complaint_id)
        missing = [ch for ch in changes if ch["_id"] not in done]
        for ch in missing:
            c = fold([d for d in changes if d["seq"] <= ch["seq"]], self.policies)
            await self._publish_change(c, ch["_id"], ch["at"])
        if missing:
            await self.repo.put_view(await self._view(fold(changes, self.policies)))

    async def _view(self, c: Complaint) -> dict[str, Any]:
        return view(c, self.now(), sorted(self.claimed.get(c.complaint_id, ())))

    # -- timers --------------------------------------------------------------------------

    def _watch(self, c: Complaint) -> None:
        if c.status == "CLOSED":
            self.open.pop(c.complaint_id, None)
            self.next_at.pop(c.complaint_id, None)
            return
        self.open[c.complaint_id] = c
        pending = [
            m.at
            for m in c.milestones(self.now())
            if m.key not in self.claimed.get(c.complaint_id, set())
        ]
        if pending:
            self.next_at[c.complaint_id] = min(pending)
        else:
            self.next_at.pop(c.complaint_id, None)

    async def tick(self) -> int:
        """Emit every milestone that is due; returns how many were emitted now. The first
        tick (the producer is up by then) recovers what a previous process left."""
        if not self.recovered:
            await self.recover()
            self.recovered = True
        now = self.now()
        emitted = 0
        for cid in [k for k, at in self.next_at.items() if at <= now]:
            async with self.locks.hold(cid):
                c = self.open.get(cid)
                if c is None:
                    continue
                done = self.claimed.setdefault(cid, set())
                for m in c.reached(now):
                    if m.key in done:
                        continue
                    # The complaint's state as of the milestone (the worst of its clocks).
                    state, level = c.sla(m.at)
                    doc = {
                        "_id": f"{cid}:{m.key}",
                        "complaint_id": cid,
                        "customer_id": c.customer_id,
                        "key": m.key,
                        "at": _ms(m.at),
                        "status": c.status,
                        "sla_state": state,
                        "level": level,
                        "due_at": c.due_at(m.clock, m.at),
                    }
                    # Not claimed now: another owner claimed it, or this one did and the
                    # store went away before it answered; either way it is published once
                    # it is marked, and until then (same event id) here too.
                    claimed = await self.repo.claim_milestone(doc)
                    if claimed or not await self.repo.is_published(f"{cid}:{m.key}"):
                        await self._publish_milestone(cid, doc)
                        emitted += 1
                        log.info(
                            "complaint milestone",
                            extra={
                                "complaint_id": cid,
                                "milestone": m.key,
                                "escalation_level": level,
                            },
                        )
                    done.add(m.key)
                await self.repo.put_view(await self._view(c))
                self._watch(c)
        return emitted

    # -- publishing ----------------------------------------------------------------------

    async def _publish_change(self, c: Complaint, event_id: str, at: dt.datetime) -> None:
        state, level = c.sla(at)
        due = c.due_at("first_response", at) or c.due_at("resolution", at)
        await self._send(event_id, c.customer_id, c.complaint_id, c.status, state, level, due, at)

    async def _publish_milestone(self, cid: str, m: dict[str, Any]) -> None:
        await self._send(
            m["_id"],
            m["customer_id"],
            cid,
            m["status"],
            m["sla_state"],
            m["level"],
            m.get("due_at"),
            m["at"],
        )

    async def _send(
        self,
        event_id: str,
        customer_id: str,
        complaint_id: str,
        status: str,
        sla_state: str,
        level: int,
        due: dt.datetime | None,
        at: dt.datetime,
    ) -> None:
        m = complaints_pb2.ComplaintUpdated(
            event_id=event_id,
            customer_id=customer_id,
            complaint_id=complaint_id,
            status=complaints_pb2.ComplaintUpdated.Status.Value(status),
            sla_state=complaints_pb2.ComplaintUpdated.SlaState.Value(sla_state),
            escalation_level=level,
        )
        m.occurred_at.FromDatetime(_utc(at))
        if due is not None:
            m.due_at.FromDatetime(_utc(due))
        await self.send(TOPIC, customer_id.encode(), codec_for(TOPIC).serialize(m), [])
        await self.repo.mark_published(event_id, _utc(at))


def _known_by(known_ms: int | None) -> int:
    """The decisions a filing knows: those caused by when it was published (epoch ms); a
    filing not published on the topic (None) knows every decision here."""
    return ALL_KNOWN if known_ms is None else known_ms


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t
