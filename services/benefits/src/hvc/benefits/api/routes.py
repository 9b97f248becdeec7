"""The benefits service's HTTP side: balances, the ledger, and claims with Idempotency-Key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from fastapi.responses import JSONResponse

from hvc.benefits.entitlements import ClaimInProgress, Entitlements
from hvc.common.problems import PROBLEM_JSON, Problem

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Z_]+$")]
Key = Annotated[
    str,
    Header(alias="Idempotency-Key", min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$"),
]


def make_router(ent: Entitlements) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["benefits"])

    @router.get("/customers/{customer_id}/benefits")
    async def balances(customer_id: Id) -> dict[str, Any]:
        """Every catalogue benefit: eligible by the tier in force, quota, used, remaining,
        active claims."""
        return await ent.balances(customer_id)

    @router.get("/customers/{customer_id}/benefits/ledger")
    async def ledger(customer_id: Id) -> dict[str, Any]:
        """Every grant, claim, revocation, expiry, command and notice, oldest first."""
        return {"customer_id": customer_id, "entries": await ent.history(customer_id)}

    @router.post("/customers/{customer_id}/benefits/{code}/claims", status_code=201)
    async def claim(customer_id: Id, code: Code, idempotency_key: Key) -> Any:
        """Claim one unit of a benefit. 201 with the claim; 409 refused (not claimable, not
        eligible for the tier in force, quota used); a replay of the Idempotency-Key answers
        exactly as the first time."""
        if code not in ent.catalogue.benefits:
            raise Problem(404, "Unknown benefit", f"no benefit {code} in the catalogue")
        try:
            status, body = await ent.claim(customer_id, code, idempotency_key)
        except ClaimInProgress:
            raise Problem(
                409,
                "Claim in progress",
                "a claim with this Idempotency-Key is being made",
                headers={"Retry-After": "1"},
            ) from None
        if status >= 400:
            return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)
        return JSONResponse(body, status_code=status)

    return router
