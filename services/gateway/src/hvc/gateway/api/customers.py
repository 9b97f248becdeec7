"""Customers: the 360, the tier with its explanation and history, a supervisor's override."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Header, Path, Query, Request, Response
from pydantic import AwareDatetime

from hvc.common.problems import Problem
from hvc.gateway.api.audited import note, record_ahead
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


@router.get("/customers")
async def find_customers(
    request: Request,
    who: Who,
    gw: Gw,
    msisdn: Annotated[
        str | None, Query(min_length=4, max_length=21, pattern=r"^\+?[0-9]+$")
    ] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> Any:
    """Find customers by phone number (full, or its last 4 digits or more), by name (or its
    first characters) or by id: name, numbers (masked per role), tier and managers. A manager
    finds only customers of its portfolio."""
    allow(who, *STAFF)
    given = [p for p in (msisdn, name, customer_id) if p is not None]
    if len(given) != 1:
        raise Problem(400, "Bad search", "give exactly one of msisdn, name and customer_id")
    r = rid(request)
    if customer_id is not None:
        prof = await gw.warnings.profile(customer_id, r)
        known = prof.get("name") or prof.get("msisdns") or prof.get("crm_manager_id")
        found = [{**prof, "customer_id": customer_id}] if known else []
    else:
        # A manager's portfolio is a small share of the customers: ask for more, keep its own.
        ask = 50 if who.role == "manager" else limit
        params = {"msisdn": msisdn, "name": name, "limit": ask}
        found = (await gw.warnings.find(params, r)).get("items", [])
    if who.role == "manager":
        found = [
            c for c in found if who.manager_id in (c.get("manager_id"), c.get("crm_manager_id"))
        ]
    items = [
        {
            "customer_id": c["customer_id"],
            **contact_view(c, who.role, gw.full_contact_roles),
            "tier": c.get("tier") or "NONE",
            "manager_id": c.get("manager_id"),
            "crm_manager_id": c.get("crm_manager_id"),
            "group_id": c.get("group_id"),
        }
        for c in found[:limit]
    ]
    return {"items": items, "total": len(items)}


TIER_ORDER = ("DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP", "NONE")


@router.get("/callers/{msisdn}")
async def caller(
    msisdn: Annotated[str, Path(min_length=4, max_length=21, pattern=r"^\+?[0-9]+$")],
    request: Request,
    who: Who,
    gw: Gw,
) -> dict[str, Any]:
    """The VIP line's lookup by calling number (优先接入): tier, priority queue, manager and
    whether a complaint is open. A caller who is nobody's customer gets the default queue.
    One call to the warnings service, whose `lookup` documents carry the open complaints
    (followed from hvc.complaints.v1); a document written before they did sends the
    gateway to the complaints service for them. Typed, so that pydantic's serializer writes
    the answer rather than FastAPI's generic encoder (its values are JSON's own: the
    services' answers)."""
    allow(who, "agent", "supervisor", "admin", "integration")
    r = rid(request)
    found = (await gw.warnings.caller(msisdn, r)).get("items", [])
    if not found:
        return {"found": False, "priority_queue": gw.default_queue}
    top = min(found, key=lambda c: TIER_ORDER.index(c["tier"]) if c["tier"] in TIER_ORDER else 9)
    cid = top["customer_id"]
    # From here the answer is 200 naming this customer: its audit entry is stored meanwhile
    # (while the complaints service answers, if asked; the call still answers only once the
    # entry is stored).
    note(request, cid)  # an answer other than foreseen names the caller too
    record_ahead(request, 200, [cid])
    answer = {
        "found": True,
        "customer_id": cid,
        "tier": top["tier"],
        "priority_queue": gw.priority_queues.get(top["tier"], gw.default_queue),
        "manager_id": top.get("manager_id") or top.get("crm_manager_id"),
        "do_not_disturb": top.get("do_not_disturb", False),
    }
    if "open_complaints" in top:
        complaints = list(top["open_complaints"])
        return answer | {"open_complaint": bool(complaints), "open_complaints": complaints}
    try:
        complaints = (await gw.complaints.open_of(cid, r)).get("open", [])
    except Problem as p:
        if p.status < 500:
            raise
        # The call is routed by its tier all the same; whether a complaint is open is unknown.
        return answer | {
            "open_complaint": None,
            "open_complaints": [],
            "complaints_error": p.detail,
        }
    return answer | {"open_complaint": bool(complaints), "open_complaints": complaints}


@router.get("/customers/{customer_id}/contacts")
async def contacts(
    customer_id: CustomerId,
    request: Request,
    who: Who,
    gw: Gw,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The customer's contact history, newest first (the staff who call the customer; a
    manager only within its portfolio)."""
    allow(who, *STAFF)
    await customer_scope(gw, who, customer_id, request)
    return await gw.warnings.contacts(customer_id, limit, offset, rid(request))


@router.get("/customers/{customer_id}/complaints")
async def complaints_of(
    customer_id: CustomerId,
    request: Request,
    who: Who,
    gw: Gw,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The customer's complaints, newest first, with their SLA clocks (staff; a manager
    only within its portfolio)."""
    allow(who, *STAFF)
    await customer_scope(gw, who, customer_id, request)
    params = {"customer_id": customer_id, "limit": limit, "offset": offset}
    return await gw.complaints.search(params, rid(request))


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
    shown = ("effective_tier", "source", "ruleset_version") + (
        ("reasons", "reason_codes", "components", "annual") if staff else ()
    )
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
                for k in (
                    "manager_id",
                    "crm_manager_id",
                    "group_id",
                    "do_not_disturb",
                    "birthday",
                    "joined_on",
                    "is_key_person",
                )
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
