"""The complaints desk: the HTTP side's transitions and work orders, and the complaint's view.

A complaint is decided by the service's pipeline alone (hvc.complaints.pipeline): the desk
checks a request against the complaint's view (a quick 409 for what cannot be), sends it as a
command on hvc.complaints-commands.v1, keyed by the complaint's customer, and waits for the
pipeline's outcome in the `outcomes` view. Two agents acting at once on one complaint are
decided in the order their commands reached its partition: the second may be refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hvc.common import topics
from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.complaints.domain.lifecycle import (
    STOPPED,
    TRANSITIONS,
    Complaint,
    InvalidTransition,
    check_transition,
)
from hvc.complaints.repository import Repository
from hvc.events.v1 import complaints_pb2

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


class Pending(TimeoutError):
    """The command is sent and not decided yet (the pipeline is behind or restarting)."""

    def __init__(self, command_id: str) -> None:
        super().__init__(command_id)
        self.command_id = command_id


def change_id(complaint_id: str, seq: int) -> str:
    """A change's event id on hvc.complaints.v1."""
    return f"{complaint_id} {seq:06d}"


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
    # Where it may go from here (the lifecycle's), for the desks that move it.
    out["nextStatuses"] = list(TRANSITIONS.get(str(doc.get("status")), ()))
    return out


@dataclass
class Desk:
    repo: Repository
    send: Send
    now: Callable[[], dt.datetime]
    wait_s: float = 10.0  # how long a request waits for the pipeline's outcome
    poll_s: float = 0.05

    async def view(self, complaint_id: str) -> dict[str, Any]:
        doc = await self.repo.view(complaint_id)
        if doc is None:
            raise NotFound(complaint_id)
        return json_view(doc)

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
        """Move a complaint along its lifecycle, once per `transition_id` (a replay with it
        answers the complaint as it is now, or the refusal it had)."""
        if transition_id:
            done = await self.repo.outcome(transition_id)
            if done is not None:
                return await self._answer(done)
        doc = await self.repo.view(complaint_id)
        if doc is None:
            raise NotFound(complaint_id)
        check_transition(doc["status"], to)
        if to == "CALLBACK_DONE" and satisfaction is None:
            raise InvalidTransition("a callback records the satisfaction (1-5)")
        if to == "DISPATCHED" and not department:
            raise InvalidTransition("dispatching names the department of the work order")
        cmd = self._command(transition_id or f"T-{uuid.uuid4().hex}", doc)
        t = cmd.transition_requested
        t.to = complaints_pb2.ComplaintUpdated.Status.Value(to)
        t.by, t.note = by, note
        t.satisfaction = satisfaction or 0
        t.department = department or ""
        return await self._decided(cmd)

    async def complete_work_order(
        self, complaint_id: str, work_order_id: str, *, by: str, result: str
    ) -> dict[str, Any]:
        """Record a department's completion of its work order (once: a replay answers the
        complaint as it is)."""
        doc = await self.repo.view(complaint_id)
        if doc is None:
            raise NotFound(complaint_id)
        orders = {w["work_order_id"]: w for w in doc.get("workOrders", [])}
        if work_order_id not in orders:
            raise NotFound(work_order_id)
        if orders[work_order_id].get("completed_at") is not None:
            return json_view(doc)
        cmd = self._command(f"W-{complaint_id}-{work_order_id}", doc)
        w = cmd.work_order_completed
        w.work_order_id, w.by, w.result = work_order_id, by, result
        return await self._decided(cmd)

    def _command(self, command_id: str, doc: dict[str, Any]) -> complaints_pb2.ComplaintCommand:
        cmd = complaints_pb2.ComplaintCommand(
            event_id=command_id, customer_id=doc["customer_id"], complaint_id=doc["id"]
        )
        cmd.occurred_at.FromDatetime(_utc(self.now()))
        return cmd

    async def _decided(self, cmd: complaints_pb2.ComplaintCommand) -> dict[str, Any]:
        """Send the command, then answer with its outcome once the pipeline wrote it."""
        topic = topics.COMPLAINTS_COMMANDS
        await self.send(topic, cmd.customer_id.encode(), codec_for(topic).serialize(cmd), [])
        deadline = time.monotonic() + self.wait_s
        while True:
            done = await self.repo.outcome(cmd.event_id)
            if done is not None:
                return await self._answer(done, fresh=True)
            if time.monotonic() >= deadline:
                raise Pending(cmd.event_id)
            await asyncio.sleep(self.poll_s)

    async def _answer(self, outcome: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
        """The outcome of a command: the complaint (as the command left it, or as it is now
        for a replay), or the refusal's error."""
        status, reason = int(outcome["status"]), str(outcome.get("reason") or "")
        if status == 404:
            raise NotFound(reason)
        if status == 409:
            raise InvalidTransition(reason)
        if fresh and outcome.get("view") is not None:
            return dict(outcome["view"])
        return await self.view(str(outcome["complaint_id"]))


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t
