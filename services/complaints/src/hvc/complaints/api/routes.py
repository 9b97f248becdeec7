"""The complaints service's HTTP side: the complaint resource (TMF621 Trouble Ticket names),
transitions, work orders and reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hvc.common import monthly
from hvc.common.problems import Problem
from hvc.common.scans import Scans
from hvc.complaints.desk import Desk, NotFound, Pending, json_view
from hvc.complaints.domain.lifecycle import STATUSES, InvalidTransition
from hvc.complaints.reports import NAMES, by_month, report

MONTH = monthly.PATTERN

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
Status = Literal[
    "RECEIVED",
    "ACKNOWLEDGED",
    "DISPATCHED",
    "IN_PROGRESS",
    "PENDING_CUSTOMER",
    "RESOLVED",
    "CALLBACK_DONE",
    "CLOSED",
    "REOPENED",
]
assert set(Status.__args__) == set(STATUSES)  # type: ignore[attr-defined]


class TransitionRequest(BaseModel):
    to: Status
    by: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    department: str | None = Field(default=None, min_length=1, max_length=64)
    transition_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Chosen by the client; a replay with the same id changes nothing.",
    )


class WorkOrderDone(BaseModel):
    by: str = Field(min_length=1, max_length=64)
    result: str = Field(default="", max_length=2000)


class CustomerIds(BaseModel):
    customer_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=2000)


def make_router(desk: Desk) -> APIRouter:
    scans = Scans.from_settings()
    router = APIRouter(prefix="/v1", tags=["complaints"])

    @router.get("/reports/monthly/{name}")
    async def monthly_report(
        name: Literal["sla", "satisfaction"],
        first: Annotated[str, Query(alias="from", pattern=MONTH)],
        last: Annotated[str, Query(alias="to", pattern=MONTH)],
    ) -> dict[str, Any]:
        """Month by month, pre-aggregated: `sla` (compliance of each month's filings by tier,
        channel and category) or `satisfaction` (the callbacks' scores)."""
        try:
            return await by_month(desk.repo, name, first, last)
        except ValueError as exc:
            raise Problem(400, "Bad range", str(exc)) from None

    @router.get("/customers/{customer_id}/open-complaints")
    async def open_complaints(
        customer_id: Annotated[str, Path(min_length=1, max_length=64)],
    ) -> dict[str, Any]:
        """The customer's complaints whose clocks run (not resolved or closed), with status
        and SLA state as of their last change: one read by id (the VIP line's lookup)."""
        doc = await desk.repo.open_of(customer_id) or {}
        return {"customer_id": customer_id, "open": list(doc.get("open") or [])}

    @router.post("/open-complaints/search")
    async def open_complaints_of_many(body: CustomerIds) -> dict[str, Any]:
        """The open complaints of many customers at once (a group's members, for its 360):
        one read by ids; customers with none are left out."""
        docs = await desk.repo.open_of_many(sorted(set(body.customer_ids)))
        return {
            "items": [
                {"customer_id": d["_id"], "open": list(d.get("open") or [])}
                for d in sorted(docs, key=lambda d: d["_id"])
                if d.get("open")
            ]
        }

    @router.get("/complaints")
    async def search(
        customer_id: Annotated[str | None, Query(max_length=64)] = None,
        status: Status | None = None,
        channel: Annotated[str | None, Query(max_length=32)] = None,
        category: Annotated[str | None, Query(max_length=64)] = None,
        sla_state: Literal["ON_TRACK", "AT_RISK", "BREACHED"] | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Complaints, newest first, filtered; the SLA state is as of the last change or
        milestone."""
        query: dict[str, Any] = {}
        for k, v in (
            ("customer_id", customer_id),
            ("status", status),
            ("channel.name", channel),
            ("ticketType", category),
            ("sla.state", sla_state),
        ):
            if v is not None:
                query[k] = v
        docs, total = await desk.repo.views(query, limit, offset)
        return {
            "items": [json_view(d) for d in docs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    @router.get("/complaints/{complaint_id}")
    async def get(complaint_id: Id) -> dict[str, Any]:
        """One complaint; its SLA state is as of its last change or milestone (a milestone
        is where the state changes)."""
        try:
            return await desk.view(complaint_id)
        except NotFound:
            raise Problem(404, "Complaint not found", f"no complaint {complaint_id}") from None

    @router.post(
        "/complaints/{complaint_id}/transitions",
        responses={202: {"description": "Sent, not decided yet: ask again with its id"}},
    )
    async def transition(complaint_id: Id, body: TransitionRequest) -> Any:
        """Move a complaint along its lifecycle; an invalid transition is 409. Decided by the
        service's pipeline: the answer is the complaint as the transition left it, or 202
        when it is not decided within the wait (repeat the request with the same
        transition_id to learn the outcome)."""
        try:
            return await desk.transition(
                complaint_id,
                body.to,
                by=body.by,
                note=body.note,
                satisfaction=body.satisfaction,
                department=body.department,
                transition_id=body.transition_id,
            )
        except NotFound:
            raise Problem(404, "Complaint not found", f"no complaint {complaint_id}") from None
        except InvalidTransition as exc:
            raise Problem(409, "Invalid transition", str(exc)) from None
        except Pending as exc:
            return _pending(complaint_id, exc)

    @router.post(
        "/complaints/{complaint_id}/work-orders/{work_order_id}/complete",
        responses={202: {"description": "Sent, not decided yet"}},
    )
    async def complete(complaint_id: Id, work_order_id: Id, body: WorkOrderDone) -> Any:
        """Record a department's completion of its work order (once)."""
        try:
            return await desk.complete_work_order(
                complaint_id, work_order_id, by=body.by, result=body.result
            )
        except NotFound as exc:
            raise Problem(404, "Not found", f"no complaint or work order {exc}") from None
        except Pending as exc:
            return _pending(complaint_id, exc)

    @router.get("/reports/{name}")
    async def reports(name: str) -> dict[str, Any]:
        """`sla`, `breaches`, `repeat-complainants`, `satisfaction`."""
        if name not in NAMES:
            raise Problem(404, "Unknown report", f"reports: {', '.join(NAMES)}")
        async with scans.slot():
            return await report(desk.repo, name)

    return router


def _pending(complaint_id: str, exc: Pending) -> JSONResponse:
    return JSONResponse(
        {"complaint_id": complaint_id, "command_id": exc.command_id, "state": "pending"},
        status_code=202,
        headers={"Location": f"/v1/complaints/{complaint_id}"},
    )
