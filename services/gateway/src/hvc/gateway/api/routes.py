"""The operator's API (/v1): authenticated, authorised per role and per object, audited.

The gateway owns no business rules: it asks the services or publishes to their input topics,
and composes. Roles:
- customer: only its own customer id (no churn warnings, tasks or manager data);
- agent: any customer; complaints;
- manager: only customers in its portfolio; its own worklist and tasks;
- supervisor, admin: everything, plus overrides, simulations, reports and the audit trail;
- integration: reads tiers, files complaints.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.common.problems import Problem, problem_responses
from hvc.events.v1 import care_pb2
from hvc.gateway.api.audited import AuditedRoute, note
from hvc.gateway.audit import Audit
from hvc.gateway.auth import Principal, Unauthorized, Verifier
from hvc.gateway.domain import views
from hvc.gateway.domain.masking import contact_view
from hvc.gateway.idempotency import Keys
from hvc.gateway.limits import RateLimiter
from hvc.gateway.reports import ReportCache
from hvc.gateway.upstream import Upstreams

# Not `.` or `..` (at least one character other than a dot): a path segment of its own.
ID = r"^[A-Za-z0-9_\-:.]*[A-Za-z0-9_\-:][A-Za-z0-9_\-:.]*$"
CustomerId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID)]
AnyId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID)]
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Z_]+$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
STAFF = ("agent", "manager", "supervisor", "admin")
REPORTS = {
    "tiers": "tiering",
    "group-classes": "tiering",
    "high-end": "tiering",
    "arpu-bands": "tiering",
    "vip-by-arpu": "tiering",
    "rfm": "tiering",
    "warnings": "warnings",
    "tasks": "warnings",
    "retention": "warnings",
    "sla": "complaints",
    "breaches": "complaints",
    "repeat-complainants": "complaints",
    "satisfaction": "complaints",
}
REGULATOR_CHANNELS = ("MIIT", "CONSUMER_315", "MAYORS_MAILBOX")
Channel = Literal[
    "BUSINESS_HALL", "HOTLINE_10086", "APP_WEB", "SMS", "CONSUMER_315", "MAYORS_MAILBOX", "MIIT"
]


class Override(BaseModel):
    tier: Literal["VIP", "SILVER", "GOLD", "PLATINUM", "DIAMOND"]
    reason: str = Field(min_length=3, max_length=500)
    expires_at: AwareDatetime


class NewComplaint(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64, pattern=ID)
    channel: Channel
    category: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=4000)


class Transition(BaseModel):
    to: Literal[
        "ACKNOWLEDGED",
        "DISPATCHED",
        "IN_PROGRESS",
        "PENDING_CUSTOMER",
        "RESOLVED",
        "CALLBACK_DONE",
        "CLOSED",
        "REOPENED",
    ]
    note: str = Field(default="", max_length=2000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    department: str | None = Field(default=None, min_length=1, max_length=64)
    transition_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID)


class Contact(BaseModel):
    contact_id: str = Field(min_length=1, max_length=64, pattern=ID)
    channel: Literal["PHONE", "SMS", "VISIT", "WECHAT", "EMAIL", "APP"]
    direction: Literal["OUTBOUND", "INBOUND"] = "OUTBOUND"
    content: str = Field(default="", max_length=2000)
    outcome: str = Field(default="", max_length=200)


class Close(BaseModel):
    outcome: Literal["RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED"]
    note: str = Field(default="", max_length=2000)


class Simulation(BaseModel):
    ruleset: dict[str, Any]
    year: int = Field(ge=2000, le=2100)
    as_of: AwareDatetime | None = None


async def principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller, from its bearer token; then its rate limit. An address whose tokens keep
    failing is answered 429 before its next token is read."""
    verifier: Verifier = request.app.state.verifier
    limiter: RateLimiter = request.app.state.limiter
    failures: RateLimiter = request.app.state.failures
    address = f"addr:{request.client.host if request.client else '-'}"
    if (wait := failures.wait(address)) is not None:
        raise Problem(
            429,
            "Too many requests",
            "too many failed authentications from this address",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    try:
        who = await verifier.verify(authorization)
    except Unauthorized as exc:
        failures.take(address)
        raise Problem(
            401, "Unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer realm="hvc"'}
        ) from None
    wait = limiter.take(who.caller)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            f"rate limit for {who.caller}",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    request.state.principal = who
    return who


Who = Annotated[Principal, Depends(principal)]


def make_router(
    up: Upstreams,
    audit: Audit,
    send: Send,
    full_contact_roles: tuple[str, ...],
    keys: Keys,
    reports: ReportCache,
) -> APIRouter:
    router = APIRouter(
        route_class=AuditedRoute,
        prefix="/v1",
        tags=["hvc"],
        responses=problem_responses(400, 401, 403, 404, 405, 409, 413, 422, 429, 502, 503, 504),
    )

    def rid(request: Request) -> str:
        return str(request.state.request_id)

    def allow(who: Principal, *roles: str) -> None:
        if who.role not in roles:
            raise Problem(403, "Forbidden", f"role {who.role} may not do this")

    async def customer_scope(who: Principal, customer_id: str, request: Request) -> None:
        """Object-level check for every customer-scoped route."""
        if who.role == "customer":
            if who.customer_id != customer_id:
                raise Problem(403, "Forbidden", "a customer sees only its own data")
        elif who.role == "manager":
            prof = await up.get(
                "warnings", f"/v1/customers/{customer_id}/profile", request_id=rid(request)
            )
            mine = {prof.get("manager_id"), prof.get("crm_manager_id")} - {None}
            if who.manager_id not in mine:
                raise Problem(403, "Forbidden", "not a customer of this manager's portfolio")
        elif who.role not in (*STAFF, "integration"):
            raise Problem(403, "Forbidden", f"role {who.role} may not read customer data")

    # -- customers -----------------------------------------------------------------------

    @router.get("/customers/{customer_id}")
    async def customer_360(customer_id: CustomerId, request: Request, who: Who) -> dict[str, Any]:
        """The customer 360: tier and its source, benefit balances, open complaints; for staff
        also the profile (name and numbers, masked unless the role calls the customer; manager,
        group, do-not-disturb) and open retention tasks."""
        allow(who, "customer", *STAFF)
        await customer_scope(who, customer_id, request)

        async def read() -> dict[str, Any]:
            r = rid(request)
            staff = who.role != "customer"
            calls = [
                up.get("tiering", f"/v1/customers/{customer_id}/tier", request_id=r),
                up.get("benefits", f"/v1/customers/{customer_id}/benefits", request_id=r),
                up.get(
                    "complaints",
                    "/v1/complaints",
                    params={"customer_id": customer_id, "limit": 50},
                    request_id=r,
                ),
            ]
            if staff:
                calls += [
                    up.get("warnings", f"/v1/customers/{customer_id}/profile", request_id=r),
                    up.get("warnings", f"/v1/customers/{customer_id}/tasks", request_id=r),
                ]
            tier, benefits, complaints, *more = await asyncio.gather(*calls)
            shown = (
                "effective_tier",
                "source",
                "ruleset_version",
                *(("reasons",) if staff else ()),
            )
            out: dict[str, Any] = {
                "customer_id": customer_id,
                "tier": {k: tier.get(k) for k in shown if k in tier},
                "benefits": benefits.get("benefits", []),
                "open_complaints": [
                    {
                        k: (c.get(k) if staff else views.complaint(c).get(k))
                        for k in (
                            "id",
                            "status",
                            "channel",
                            "ticketType",
                            "sla",
                            "creationDate",
                            "expectedResolutionDate",
                        )
                    }
                    for c in complaints.get("items", [])
                    if c.get("status") != "CLOSED"
                ],
            }
            if staff:
                prof, tasks = more
                out["profile"] = {
                    **contact_view(prof, who.role, full_contact_roles),
                    **{
                        k: prof.get(k)
                        for k in ("manager_id", "crm_manager_id", "group_id", "do_not_disturb")
                    },
                }
                out["open_tasks"] = [t for t in tasks.get("items", []) if t["status"] == "OPEN"]
            return out

        return await read()

    @router.get("/customers/{customer_id}/tier")
    async def tier(
        customer_id: CustomerId, request: Request, who: Who, at: AwareDatetime | None = None
    ) -> dict[str, Any]:
        """The effective tier with its explanation (tiering)."""
        allow(who, "customer", "integration", *STAFF)
        await customer_scope(who, customer_id, request)
        params = {"at": at.isoformat() if at else None}

        async def read() -> dict[str, Any]:
            t: dict[str, Any] = await up.get(
                "tiering",
                f"/v1/customers/{customer_id}/tier",
                params=params,
                request_id=rid(request),
            )
            return views.tier(t) if who.role in views.OUTSIDE else t

        return await read()

    @router.get("/customers/{customer_id}/tier/history")
    async def tier_history(
        customer_id: CustomerId,
        request: Request,
        who: Who,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Every tier decision, newest first."""
        allow(who, "customer", *STAFF)
        await customer_scope(who, customer_id, request)

        async def read() -> dict[str, Any]:
            h: dict[str, Any] = await up.get(
                "tiering",
                f"/v1/customers/{customer_id}/tier/history",
                params={"limit": limit, "offset": offset},
                request_id=rid(request),
            )
            return views.history(h) if who.role in views.OUTSIDE else h

        return await read()

    @router.put("/customers/{customer_id}/tier/override")
    async def override(
        customer_id: CustomerId,
        body: Override,
        request: Request,
        response: Response,
        who: Who,
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
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        status, out = await up.forward(
            "tiering",
            "PUT",
            f"/v1/customers/{customer_id}/tier/override",
            json=payload,
            headers=headers,
            request_id=rid(request),
        )
        response.status_code = status
        return out

    @router.get("/customers/{customer_id}/benefits")
    async def benefits(customer_id: CustomerId, request: Request, who: Who) -> Any:
        """Benefit balances by the tier in force."""
        allow(who, "customer", *STAFF)
        await customer_scope(who, customer_id, request)
        return await up.get(
            "benefits", f"/v1/customers/{customer_id}/benefits", request_id=rid(request)
        )

    @router.post("/customers/{customer_id}/benefits/{code}/claims", status_code=201)
    async def claim(
        customer_id: CustomerId,
        code: Code,
        request: Request,
        response: Response,
        who: Who,
        idempotency_key: Annotated[str, Header(min_length=8, max_length=64, pattern=ID)],
    ) -> Any:
        """Claim a benefit; the Idempotency-Key makes a replay answer as the first time."""
        allow(who, "customer", "agent", "supervisor")
        await customer_scope(who, customer_id, request)
        key = await keys.bind(who.caller, customer_id, idempotency_key, {"claim": code})
        status, out = await up.forward(
            "benefits",
            "POST",
            f"/v1/customers/{customer_id}/benefits/{code}/claims",
            headers={"Idempotency-Key": key},
            request_id=rid(request),
        )
        response.status_code = status
        return out

    # -- complaints ----------------------------------------------------------------------

    @router.post("/complaints", status_code=202)
    async def file_complaint(
        body: NewComplaint,
        request: Request,
        who: Who,
        idempotency_key: Annotated[str | None, Header(max_length=64, pattern=ID)] = None,
    ) -> dict[str, Any]:
        """File a complaint: published to care.complaints.v1 (the complaints service files
        it once); 202 with its id. An Idempotency-Key gives the same id on a replay."""
        allow(who, "customer", "agent", "supervisor", "integration")
        if body.channel in REGULATOR_CHANNELS and who.role not in ("agent", "integration"):
            # The regulator's channels carry its stricter SLA: recorded by the agents and
            # systems that receive those complaints, never chosen by a customer.
            raise Problem(403, "Forbidden", f"role {who.role} may not file as {body.channel}")
        await customer_scope(who, body.customer_id, request)
        if idempotency_key:
            seed = await keys.bind(who.caller, body.customer_id, idempotency_key, body.model_dump())
        else:
            seed = uuid.uuid4().hex
        complaint_id = "GW-" + hashlib.sha256(seed.encode()).hexdigest()[:20]
        m = care_pb2.ComplaintEvent(event_id=f"gw-{complaint_id}", customer_id=body.customer_id)
        m.occurred_at.GetCurrentTime()
        f = m.complaint_filed
        f.complaint_id, f.category, f.text = complaint_id, body.category, body.text
        f.channel = care_pb2.ComplaintFiled.Channel.Value(body.channel)
        f.filed_at.CopyFrom(m.occurred_at)
        topic = "care.complaints.v1"
        try:
            await send(topic, body.customer_id.encode(), codec_for(topic).serialize(m), [])
        except Exception:
            raise Problem(
                503,
                "Broker unavailable",
                "the complaint could not be published; retry",
                headers={"Retry-After": "5"},
            ) from None
        return {"id": complaint_id, "href": f"/v1/complaints/{complaint_id}", "status": "RECEIVED"}

    async def complaint_for(who: Principal, complaint_id: str, request: Request) -> dict[str, Any]:
        c: dict[str, Any] = await up.get(
            "complaints", f"/v1/complaints/{complaint_id}", request_id=rid(request)
        )
        note(request, c.get("customer_id"))
        if c.get("id") != complaint_id:  # another route's answer, not this complaint
            raise Problem(502, "Upstream error", "the complaints service answered another object")
        if who.role == "customer" and c.get("customer_id") != who.customer_id:
            raise Problem(404, "Complaint not found", f"no complaint {complaint_id}")
        if who.role == "manager":
            await customer_scope(who, c["customer_id"], request)
        return c

    @router.get("/complaints/{complaint_id}")
    async def get_complaint(complaint_id: AnyId, request: Request, who: Who) -> dict[str, Any]:
        """One complaint (TMF621 Trouble Ticket shape)."""
        allow(who, "customer", *STAFF)
        c = await complaint_for(who, complaint_id, request)
        return views.complaint(c) if who.role in views.OUTSIDE else c

    @router.get("/complaints")
    async def list_complaints(
        request: Request,
        who: Who,
        customer_id: Annotated[str | None, Query(max_length=64, pattern=ID)] = None,
        status: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_]+$")] = None,
        channel: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_0-9]+$")] = None,
        sla_state: Literal["ON_TRACK", "AT_RISK", "BREACHED"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
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
        page: dict[str, Any] = await listed_for(who, request, params)
        return page

    async def listed_for(who: Principal, request: Request, params: dict[str, Any]) -> Any:
        page: dict[str, Any] = await up.get(
            "complaints", "/v1/complaints", params=params, request_id=rid(request)
        )
        if who.role in views.OUTSIDE:
            page = {**page, "items": [views.complaint(c) for c in page.get("items", [])]}
        return page

    @router.post(
        "/complaints/{complaint_id}/transitions",
        responses={202: {"description": "Sent, not decided yet: repeat with its transition_id"}},
    )
    async def transition(complaint_id: AnyId, body: Transition, request: Request, who: Who) -> Any:
        """Move a complaint along its lifecycle (staff). The complaints service decides it on
        its stream: 202 (with the command's id) when it has not within its wait."""
        allow(who, "agent", "supervisor")
        status, out = await up.forward(
            "complaints",
            "POST",
            f"/v1/complaints/{complaint_id}/transitions",
            json={**body.model_dump(), "by": who.sub},
            request_id=rid(request),
        )
        if status == 202:
            return JSONResponse(out, status_code=202)
        result: dict[str, Any] = out
        return result

    # -- managers' work --------------------------------------------------------------------

    async def my_task(who: Principal, task_id: str, request: Request) -> None:
        if who.role == "supervisor":
            return
        # The task by its id, its manager compared (a worklist page held only the first 500).
        task = await up.get("warnings", f"/v1/tasks/{task_id}", request_id=rid(request))
        if task.get("task_id") != task_id or task.get("manager_id") != who.manager_id:
            raise Problem(404, "Task not found", f"no task {task_id} in your worklist")

    @router.get("/worklist")
    async def worklist(request: Request, who: Who, limit: Limit = 50, offset: Offset = 0) -> Any:
        """The calling manager's retention tasks."""
        allow(who, "manager")
        return await up.get(
            "warnings",
            f"/v1/managers/{who.manager_id}/tasks",
            params={"limit": limit, "offset": offset},
            request_id=rid(request),
        )

    @router.post("/tasks/{task_id}/contacts", status_code=201)
    async def contact(
        task_id: AnyId, body: Contact, request: Request, response: Response, who: Who
    ) -> Any:
        """Record a contact for a task (do-not-disturb and the frequency cap apply)."""
        allow(who, "manager", "supervisor")
        await my_task(who, task_id, request)
        status, out = await up.forward(
            "warnings",
            "POST",
            f"/v1/tasks/{task_id}/contacts",
            json={**body.model_dump(), "by": who.sub},
            request_id=rid(request),
        )
        response.status_code = status
        return out

    @router.post("/tasks/{task_id}/close")
    async def close_task(task_id: AnyId, body: Close, request: Request, who: Who) -> Any:
        """Close a task with its outcome (once)."""
        allow(who, "manager", "supervisor")
        await my_task(who, task_id, request)
        _status, out = await up.forward(
            "warnings",
            "POST",
            f"/v1/tasks/{task_id}/close",
            json={**body.model_dump(), "closed_by": who.sub},
            request_id=rid(request),
        )
        return out

    # -- reports, simulations, audit ---------------------------------------------------------

    @router.get("/reports/{name}")
    async def report(
        name: Annotated[str, Path(max_length=40, pattern=r"^[a-z\-]+$")],
        request: Request,
        who: Who,
    ) -> Any:
        """The services' reports: tiering, warnings, complaints."""
        allow(who, "manager", "supervisor", "admin")
        service = REPORTS.get(name)
        if service is None:
            raise Problem(404, "Unknown report", f"reports: {', '.join(sorted(REPORTS))}")
        if who.role == "manager" and service != "warnings":
            raise Problem(403, "Forbidden", "managers see the warnings reports")
        params = {k: v for k, v in request.query_params.items() if k in ("at", "period", "year")}
        return await reports.get(
            name,
            params,
            lambda: up.get(service, f"/v1/reports/{name}", params=params, request_id=rid(request)),
        )

    @router.post("/tiering/simulations")
    async def simulate(body: Simulation, request: Request, who: Who) -> Any:
        """A rule-set dry run (tiering); stores and emits nothing."""
        allow(who, "supervisor", "admin")
        _status, out = await up.forward(
            "tiering",
            "POST",
            "/v1/tiering/simulations",
            json=body.model_dump(mode="json", exclude_none=True),
            request_id=rid(request),
        )
        return out

    @router.get("/audit")
    async def audit_trail(
        request: Request,
        who: Who,
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
        return await audit.of(customer_id, sub, limit, offset)

    return router
