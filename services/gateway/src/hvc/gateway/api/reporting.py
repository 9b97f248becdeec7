"""Reports (the services', cached and bounded: hvc.gateway.reports), rule-set dry runs and
the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request

from hvc.common import monthly
from hvc.common.problems import Problem
from hvc.gateway.api.deps import Gw, Limit, Offset, Who, allow, new_router, rid
from hvc.gateway.api.models import ID, Simulation

router = new_router()
REPORTS = {
    "tiers": "tiering",
    "group-classes": "tiering",
    "group-indicators": "tiering",
    "high-end": "tiering",
    "arpu-bands": "tiering",
    "vip-by-arpu": "tiering",
    "rfm": "tiering",
    "warnings": "warnings",
    "tasks": "warnings",
    "retention": "warnings",
    "outages": "warnings",
    "callbacks": "warnings",
    "sla": "complaints",
    "breaches": "complaints",
    "repeat-complainants": "complaints",
    "satisfaction": "complaints",
}


MONTHLY = {
    "tiers": "tiering",
    "warnings": "warnings",
    "retention": "warnings",
    "sla": "complaints",
    "satisfaction": "complaints",
}
MONTH = monthly.PATTERN


@router.get("/reports/monthly/{name}")
async def monthly_report(
    name: Annotated[str, Path(max_length=40, pattern=r"^[a-z\-]+$")],
    first: Annotated[str, Query(alias="from", pattern=MONTH, description="YYYY-MM")],
    last: Annotated[str, Query(alias="to", pattern=MONTH, description="YYYY-MM, included")],
    request: Request,
    who: Who,
    gw: Gw,
    manager_id: Annotated[str | None, Query(max_length=64, pattern=ID)] = None,
) -> dict[str, Any]:
    """Reports month by month over a range, from the services' pre-aggregated monthly views:
    tiers (distribution and moves), warnings (by code, level, tier), retention (by manager
    and tier), sla (compliance by tier, channel, category), satisfaction. A manager sees its
    own retention. (Typed: FastAPI then writes the answer with pydantic's serializer; `Any`
    took its generic encoder, 31 ms for a year of retention by 250 managers.)"""
    allow(who, "manager", "supervisor", "admin")
    service = MONTHLY.get(name)
    if service is None:
        raise Problem(404, "Unknown report", f"monthly reports: {', '.join(sorted(MONTHLY))}")
    if who.role == "manager":
        if name != "retention":
            raise Problem(403, "Forbidden", "managers see their own retention")
        manager_id = who.manager_id
    params = {"from": first, "to": last}
    if name == "retention" and manager_id:
        params["manager_id"] = manager_id
    path = f"/v1/reports/monthly/{name}"
    body: dict[str, Any] = await gw.up.get(service, path, params=params, request_id=rid(request))
    return body


@router.get("/reports/{name}")
async def report(
    name: Annotated[str, Path(max_length=40, pattern=r"^[a-z\-]+$")],
    request: Request,
    who: Who,
    gw: Gw,
) -> Any:
    """The services' reports: tiering, warnings, complaints."""
    allow(who, "manager", "supervisor", "admin")
    service = REPORTS.get(name)
    if service is None:
        raise Problem(404, "Unknown report", f"reports: {', '.join(sorted(REPORTS))}")
    if who.role == "manager" and service != "warnings":
        raise Problem(403, "Forbidden", "managers see the warnings reports")
    names = ("at", "period", "year", "quarter")
    params = {k: v for k, v in request.query_params.items() if k in names}
    client = {"tiering": gw.tiering, "warnings": gw.warnings, "complaints": gw.complaints}[service]
    return await gw.reports.get(name, params, lambda: client.report(name, params, rid(request)))


@router.get("/outages/{outage_id}/notices")
async def outage_notices(
    outage_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID)],
    request: Request,
    who: Who,
    gw: Gw,
) -> Any:
    """An outage's proactive notices (DOMAIN §6): the high-value customers it concerns, the
    notices sent, suppressed and why. The agents who take the calls about it read it too."""
    allow(who, "agent", "supervisor", "admin")
    path = f"/v1/outages/{outage_id}/notices"
    return await gw.up.get("warnings", path, request_id=rid(request))


@router.get("/tiering/rulesets/current")
async def current_ruleset(request: Request, who: Who, gw: Gw) -> Any:
    """The tiering rule set in force (what a simulation's candidate starts from)."""
    allow(who, "supervisor", "admin")
    return await gw.up.get("tiering", "/v1/tiering/rulesets/current", request_id=rid(request))


@router.post("/tiering/simulations")
async def simulate(body: Simulation, request: Request, who: Who, gw: Gw) -> Any:
    """A rule-set dry run (tiering); stores and emits nothing."""
    allow(who, "supervisor", "admin")
    return await gw.tiering.simulate(body.model_dump(mode="json", exclude_none=True), rid(request))


@router.get("/audit")
async def audit_trail(
    who: Who,
    gw: Gw,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID)] = None,
    sub: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Who called about a customer, or what a staff member called (`sub`), newest first
    (supervisor): every call, answered or refused."""
    allow(who, "supervisor")
    if customer_id is None and sub is None:
        raise Problem(422, "A customer or a caller is required", "give customer_id or sub")
    return await gw.audit.of(customer_id, sub, limit, offset)
