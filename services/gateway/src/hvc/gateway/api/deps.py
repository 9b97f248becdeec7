"""What every route of the gateway's API shares: its dependencies (`Gateway`, on the app's
state), the caller (`Who`: token, then rate limits), the path and query types, and the role
and object checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from hvc.common.kafka import Send
from hvc.common.problems import Problem
from hvc.gateway.api import clients
from hvc.gateway.api.audited import AuditedRoute
from hvc.gateway.api.models import ID
from hvc.gateway.audit import Audit
from hvc.gateway.auth import Principal, Unauthorized, Verifier
from hvc.gateway.idempotency import Keys
from hvc.gateway.limits import RateLimiter, SharedWindows
from hvc.gateway.reports import ReportCache
from hvc.gateway.upstream import Upstreams

CustomerId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID)]
AnyId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID)]
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Z_]+$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
STAFF = ("agent", "manager", "supervisor", "admin")


@dataclass
class Gateway:
    """The gateway's parts the routes use (built by the bootstrap)."""

    up: Upstreams
    audit: Audit
    send: Send
    keys: Keys
    reports: ReportCache
    full_contact_roles: tuple[str, ...]
    priority_queues: dict[str, str] = field(default_factory=dict)
    default_queue: str = "P4"
    tiering: clients.Tiering = field(init=False)
    warnings: clients.Warnings = field(init=False)
    benefits: clients.Benefits = field(init=False)
    complaints: clients.Complaints = field(init=False)

    def __post_init__(self) -> None:
        self.tiering = clients.Tiering(self.up)
        self.warnings = clients.Warnings(self.up)
        self.benefits = clients.Benefits(self.up)
        self.complaints = clients.Complaints(self.up)


async def gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off on
    # every call (6.6 % of the gateway's samples on the VIP line at 200/s).
    gw: Gateway = request.app.state.gateway
    return gw


Gw = Annotated[Gateway, Depends(gateway)]


def new_router() -> APIRouter:
    """A router of the API: each of its calls audited (hvc.gateway.api.audited)."""
    return APIRouter(route_class=AuditedRoute, redirect_slashes=False)


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
    if wait is None:  # and across the replicas, as the store counts them
        shared: SharedWindows = request.app.state.shared_limit
        wait = shared.take(who.caller)
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


def rid(request: Request) -> str:
    """The gateway's request id (hvc.gateway.middleware), passed on to the services."""
    return str(request.state.request_id)


def allow(who: Principal, *roles: str) -> None:
    if who.role not in roles:
        raise Problem(403, "Forbidden", f"role {who.role} may not do this")


async def customer_scope(gw: Gateway, who: Principal, customer_id: str, request: Request) -> None:
    """Object-level check for every customer-scoped route."""
    if who.role == "customer":
        if who.customer_id != customer_id:
            raise Problem(403, "Forbidden", "a customer sees only its own data")
    elif who.role == "manager":
        prof = await gw.warnings.profile(customer_id, rid(request))
        mine = {prof.get("manager_id"), prof.get("crm_manager_id")} - {None}
        if who.manager_id not in mine:
            raise Problem(403, "Forbidden", "not a customer of this manager's portfolio")
    elif who.role not in (*STAFF, "integration"):
        raise Problem(403, "Forbidden", f"role {who.role} may not read customer data")
