"""Benefits: balances by the tier in force, and claims (once per idempotency key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Request, Response

from hvc.gateway.api.deps import (
    STAFF,
    Code,
    CustomerId,
    Gw,
    Who,
    allow,
    customer_scope,
    new_router,
    rid,
)
from hvc.gateway.api.models import ID

router = new_router()


@router.get("/customers/{customer_id}/benefits")
async def balances(customer_id: CustomerId, request: Request, who: Who, gw: Gw) -> Any:
    """Benefit balances by the tier in force."""
    allow(who, "customer", *STAFF)
    await customer_scope(gw, who, customer_id, request)
    return await gw.benefits.balances(customer_id, rid(request))


@router.post("/customers/{customer_id}/benefits/{code}/claims", status_code=201)
async def claim(
    customer_id: CustomerId,
    code: Code,
    request: Request,
    response: Response,
    who: Who,
    gw: Gw,
    idempotency_key: Annotated[str, Header(min_length=8, max_length=64, pattern=ID)],
) -> Any:
    """Claim a benefit; the Idempotency-Key makes a replay answer as the first time (bound to
    the caller, the customer and the benefit: reused for another, 422)."""
    allow(who, "customer", "agent", "supervisor")
    await customer_scope(gw, who, customer_id, request)
    key = await gw.keys.bind(who.caller, customer_id, idempotency_key, {"claim": code})
    status, out = await gw.benefits.claim(customer_id, code, key, rid(request))
    response.status_code = status
    return out
