"""Customers: the 360, the tier with its explanation and history, a supervisor's override."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import AwareDatetime

from hvc.gateway.api.deps import (
    STAFF,
    CustomerId,
    Gw,
    Limit,
    Offset,
    Who,
    allow,
    customer_scope,
    new_router,
    rid,
)
from hvc.gateway.api.models import ID, Override
from hvc.gateway.domain import views
from hvc.gateway.domain.masking import contact_view

router = new_router()
COMPLAINT_FIELDS = (
    "id",
    "status",
    "channel",
    "ticketType",
    "sla",
    "creationDate",
    "expectedResolutionDate",
)


@router.get("/customers/{customer_id}")
async def customer_360(customer_id: CustomerId, request: Request, who: Who, gw: Gw) -> Any:
    """The customer 360: tier and its source, benefit balances, open complaints; for staff also
    the profile (name and numbers, masked unless the role calls the customer; manager, group,
    do-not-disturb) and open retention tasks."""
    allow(who, "customer", *STAFF)
    await customer_scope(gw, who, customer_id, request)
    r = rid(request)
    staff = who.role != "customer"
    calls: list[Any] = [
        gw.tiering.tier(customer_id, None, r),
        gw.benefits.balances(customer_id, r),
        gw.complaints.search({"customer_id": customer_id, "limit": 50}, r),
    ]
    if staff:
        calls += [gw.warnings.profile(customer_id, r), gw.warnings.tasks_of(customer_id, r)]
    tier, benefits, complaints, *more = await asyncio.gather(*calls)
    shown = ("effective_tier", "source", "ruleset_version") + (("reasons",) if staff else ())
    out: dict[str, Any] = {
        "customer_id": customer_id,
        "tier": {k: tier.get(k) for k in shown if k in tier},
        "benefits": benefits.get("benefits", []),
        "open_complaints": [
            {k: (c if staff else views.complaint(c)).get(k) for k in COMPLAINT_FIELDS}
            for c in complaints.get("items", [])
            if c.get("status") != "CLOSED"
        ],
    }
    if staff:
        prof, tasks = more
        out["profile"] = {
            **contact_view(prof, who.role, gw.full_contact_roles),
            **{
                k: prof.get(k)
                for k in ("manager_id", "crm_manager_id", "group_id", "do_not_disturb")
            },
        }
        out["open_tasks"] = [t for t in tasks.get("items", []) if t["status"] == "OPEN"]
    return out


@router.get("/customers/{customer_id}/tier")
async def tier(
    customer_id: CustomerId, request: Request, who: Who, gw: Gw, at: AwareDatetime | None = None
) -> Any:
    """The effective tier with its explanation (tiering); customers and integrations see its
    source and validity only."""
    allow(who, "customer", "integration", *STAFF)
    await customer_scope(gw, who, customer_id, request)
    t = await gw.tiering.tier(customer_id, at.isoformat() if at else None, rid(request))
    return views.tier(t) if who.role in views.OUTSIDE else t


@router.get("/customers/{customer_id}/tier/history")
async def tier_history(
    customer_id: CustomerId,
    request: Request,
    who: Who,
    gw: Gw,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Every tier decision, newest first."""
    allow(who, "customer", *STAFF)
    await customer_scope(gw, who, customer_id, request)
    h = await gw.tiering.history(customer_id, limit, offset, rid(request))
    return views.history(h) if who.role in views.OUTSIDE else h


@router.put("/customers/{customer_id}/tier/override")
async def override(
    customer_id: CustomerId,
    body: Override,
    request: Request,
    response: Response,
    who: Who,
    gw: Gw,
    idempotency_key: Annotated[str | None, Header(max_length=64, pattern=ID)] = None,
) -> Any:
    """A supervisor's manual tier floor, with reason and expiry."""
    allow(who, "supervisor")
    payload = {
        "tier": body.tier,
        "reason": body.reason,
        "expires_at": body.expires_at.isoformat(),
        "set_by": who.sub,
    }
    status, out = await gw.tiering.override(customer_id, payload, idempotency_key, rid(request))
    response.status_code = status
    return out
