"""Complaints: filing (published to care.complaints.v1), reading, listing, transitions."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse

from hvc.common.codec import codec_for
from hvc.common.problems import Problem
from hvc.events.v1 import care_pb2
from hvc.gateway.api.audited import note
from hvc.gateway.api.deps import (
    STAFF,
    AnyId,
    Gw,
    Limit,
    Offset,
    Who,
    allow,
    customer_scope,
    new_router,
    rid,
)
from hvc.gateway.api.models import ID, REGULATOR_CHANNELS, NewComplaint, Transition
from hvc.gateway.auth import Principal
from hvc.gateway.domain import views

router = new_router()
TOPIC = "care.complaints.v1"


@router.post("/complaints", status_code=202)
async def file_complaint(
    body: NewComplaint,
    request: Request,
    who: Who,
    gw: Gw,
    idempotency_key: Annotated[str | None, Header(max_length=64, pattern=ID)] = None,
) -> dict[str, Any]:
    """File a complaint: published to care.complaints.v1 (the complaints service files it
    once); 202 with its id. An Idempotency-Key gives the same id on a replay."""
    allow(who, "customer", "agent", "supervisor", "integration")
    if body.channel in REGULATOR_CHANNELS and who.role not in ("agent", "integration"):
        # The regulator's channels carry its stricter SLA: recorded by the agents and systems
        # that receive those complaints, never chosen by a customer.
        raise Problem(403, "Forbidden", f"role {who.role} may not file as {body.channel}")
    await customer_scope(gw, who, body.customer_id, request)
    if idempotency_key:
        seed = await gw.keys.bind(who.caller, body.customer_id, idempotency_key, body.model_dump())
    else:
        seed = uuid.uuid4().hex
    complaint_id = "GW-" + hashlib.sha256(seed.encode()).hexdigest()[:20]
    m = care_pb2.ComplaintEvent(event_id=f"gw-{complaint_id}", customer_id=body.customer_id)
    m.occurred_at.GetCurrentTime()
    f = m.complaint_filed
    f.complaint_id, f.category, f.text = complaint_id, body.category, body.text
    f.channel = care_pb2.ComplaintFiled.Channel.Value(body.channel)
    f.filed_at.CopyFrom(m.occurred_at)
    try:
        await gw.send(TOPIC, body.customer_id.encode(), codec_for(TOPIC).serialize(m), [])
    except Exception:
        raise Problem(
            503,
            "Broker unavailable",
            "the complaint could not be published; retry",
            headers={"Retry-After": "5"},
        ) from None
    return {"id": complaint_id, "href": f"/v1/complaints/{complaint_id}", "status": "RECEIVED"}


async def complaint_for(
    gw: Gw, who: Principal, complaint_id: str, request: Request
) -> dict[str, Any]:
    c = await gw.complaints.one(complaint_id, rid(request))
    note(request, c.get("customer_id"))
    if c.get("id") != complaint_id:  # another route's answer, not this complaint
        raise Problem(502, "Upstream error", "the complaints service answered another object")
    if who.role == "customer" and c.get("customer_id") != who.customer_id:
        raise Problem(404, "Complaint not found", f"no complaint {complaint_id}")
    if who.role == "manager":
        await customer_scope(gw, who, c["customer_id"], request)
    return c


@router.get("/complaints/{complaint_id}")
async def get_complaint(complaint_id: AnyId, request: Request, who: Who, gw: Gw) -> Any:
    """One complaint (TMF621 Trouble Ticket shape); a customer's without its work orders and
    escalation targets."""
    allow(who, "customer", *STAFF)
    c = await complaint_for(gw, who, complaint_id, request)
    return views.complaint(c) if who.role in views.OUTSIDE else c


@router.get("/complaints")
async def list_complaints(
    request: Request,
    who: Who,
    gw: Gw,
    customer_id: Annotated[str | None, Query(max_length=64, pattern=ID)] = None,
    status: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_]+$")] = None,
    channel: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_0-9]+$")] = None,
    sla_state: Literal["ON_TRACK", "AT_RISK", "BREACHED"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Complaints, filtered and paginated; a customer sees only its own."""
    allow(who, "customer", "agent", "supervisor", "admin")
    if who.role == "customer":
        customer_id = who.customer_id
    params = {
        "customer_id": customer_id,
        "status": status,
        "channel": channel,
        "sla_state": sla_state,
        "limit": limit,
        "offset": offset,
    }
    page = await gw.complaints.search(params, rid(request))
    if who.role in views.OUTSIDE:
        page = {**page, "items": [views.complaint(c) for c in page.get("items", [])]}
    return page


@router.post(
    "/complaints/{complaint_id}/transitions",
    responses={202: {"description": "Sent, not decided yet: repeat with its transition_id"}},
)
async def transition(
    complaint_id: AnyId, body: Transition, request: Request, who: Who, gw: Gw
) -> Any:
    """Move a complaint along its lifecycle (staff). The complaints service decides it on its
    stream: 202 (with the command's id) when it has not within its wait."""
    allow(who, "agent", "supervisor")
    status, out = await gw.complaints.transition(
        complaint_id, {**body.model_dump(), "by": who.sub}, rid(request)
    )
    if status == 202:
        return JSONResponse(out, status_code=202)
    return out
