"""The warnings service's HTTP side: worklists, closing tasks, contacts, reports."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hvc.common import monthly
from hvc.common.problems import Problem
from hvc.common.scans import Scans
from hvc.warnings.callback_desk import CallbackDesk, CallbackDone, CallbackNotFound
from hvc.warnings.contacts import ContactIdTaken, ContactRefused, Contacts
from hvc.warnings.directory import Lookups, ViewDirectory
from hvc.warnings.domain.callbacks import quarter_name
from hvc.warnings.reports import Reports
from hvc.warnings.tasks import TaskAlreadyClosed, TaskNotFound, Tasks

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
CallbackId = Annotated[  # CB-<quarter>-<customer id>, or VI-<quarter>-<group id> (a visit)
    str, Path(min_length=1, max_length=90, pattern=r"^(CB|VI)-\d{4}Q[1-4]-[A-Za-z0-9_\-:.]+$")
]


MONTH = monthly.PATTERN
FirstMonth = Annotated[str, Query(alias="from", pattern=MONTH, description="YYYY-MM")]
LastMonth = Annotated[str, Query(alias="to", pattern=MONTH, description="YYYY-MM, included")]


class CloseRequest(BaseModel):
    outcome: Literal["RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED"]
    closed_by: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)


class ContactRequest(BaseModel):
    contact_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-:.]+$",
        description="Chosen by the client; a replay with the same id records nothing new.",
    )
    channel: Literal["PHONE", "SMS", "VISIT", "WECHAT", "EMAIL", "APP"]
    direction: Literal["OUTBOUND", "INBOUND"] = "OUTBOUND"
    content: str = Field(default="", max_length=2000)
    outcome: str = Field(default="", max_length=200)
    by: str = Field(min_length=1, max_length=64)
    at: AwareDatetime | None = None


class CallbackDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["REACHED", "NOT_REACHED", "DECLINED"]
    notes: str = Field(default="", max_length=2000)
    by: str = Field(min_length=1, max_length=64)
    at: AwareDatetime | None = None


def make_router(
    tasks: Tasks,
    contacts: Contacts,
    reports: Reports,
    directory: Lookups | None = None,
    callbacks: CallbackDesk | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["warnings"])
    scans = Scans.from_settings()
    if callbacks is not None:
        _callback_routes(router, callbacks)

    @router.get("/managers/{manager_id}/tasks")
    async def worklist(
        manager_id: Id,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """A manager's retention tasks, soonest due first, with status and overdue flag."""
        return await tasks.worklist(manager_id, dt.datetime.now(dt.UTC), limit, offset)

    @router.get("/managers/{manager_id}/cases")
    async def cases(
        manager_id: Id,
        code: Annotated[str | None, Query(pattern=r"^[A-Z_]{1,40}$")] = None,
        tier: Annotated[str | None, Query(pattern=r"^[A-Z]{1,10}$")] = None,
        due: Literal["overdue", "today", "week"] | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """A manager's open tasks as one case per customer (its tier now, name and numbers
        from the profile), overdue first, then by tier and level, then due time."""

        async def profiles(ids: list[str]) -> dict[str, dict[str, Any]]:
            if directory is None:
                return {}
            return await directory.profiles_of(ids)

        return await tasks.cases(
            manager_id,
            dt.datetime.now(dt.UTC),
            code=code,
            tier=tier,
            due=due,
            limit=limit,
            offset=offset,
            profiles=profiles,
        )

    @router.get("/tasks/{task_id}")
    async def task(task_id: Id) -> dict[str, Any]:
        """One retention task, its manager and status."""
        try:
            return await tasks.one(task_id, dt.datetime.now(dt.UTC))
        except TaskNotFound:
            raise Problem(404, "Task not found", f"no retention task {task_id}") from None

    @router.post("/tasks/{task_id}/close")
    async def close(task_id: Id, body: CloseRequest) -> dict[str, Any]:
        """Record the outcome once and publish TaskClosed; a replay answers the same."""
        try:
            return await tasks.close(
                task_id, body.outcome, body.closed_by, body.note, dt.datetime.now(dt.UTC)
            )
        except TaskNotFound:
            raise Problem(404, "Task not found", f"no retention task {task_id}") from None
        except TaskAlreadyClosed as exc:
            raise Problem(
                409, "Task already closed", str(exc), outcome=exc.closure["outcome"]
            ) from None

    @router.post("/tasks/{task_id}/contacts", status_code=201)
    async def contact(task_id: Id, body: ContactRequest, response: Response) -> dict[str, Any]:
        """Record a contact made for a task. Outbound contact is refused (409) for a customer
        on do-not-disturb, and (429, with Retry-After) within the frequency cap."""
        now = dt.datetime.now(dt.UTC)
        try:
            doc, created = await contacts.record(
                task_id,
                body.contact_id,
                channel=body.channel,
                direction=body.direction,
                content=body.content,
                outcome=body.outcome,
                by=body.by,
                at=body.at or now,
            )
        except TaskNotFound:
            raise Problem(404, "Task not found", f"no retention task {task_id}") from None
        except ContactIdTaken:
            raise Problem(
                409, "Contact id in use", f"contact {body.contact_id} belongs to another task"
            ) from None
        except ContactRefused as exc:
            if exc.retry_after is None:
                raise Problem(409, "Contact not allowed", exc.detail, reason=exc.reason) from None
            wait = max(1, int((exc.retry_after - now).total_seconds()))
            raise Problem(
                429,
                "Contact frequency cap",
                exc.detail,
                reason=exc.reason,
                next_allowed_at=exc.retry_after.isoformat(),
                headers={"Retry-After": str(wait)},
            ) from None
        if not created:
            response.status_code = 200
        return doc

    @router.get("/customers/{customer_id}/contacts")
    async def history(
        customer_id: Id,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """A customer's contact history, newest first."""
        return await contacts.history(customer_id, limit, offset)

    @router.get("/customers/{customer_id}/profile")
    async def profile(customer_id: Id) -> dict[str, Any]:
        """What this service knows of the customer: name and numbers, CRM manager, group,
        do-not-disturb, the tier in force, and the manager who works its retention tasks."""
        known = await directory.profile_of(customer_id) if directory else {}
        return {
            "customer_id": customer_id,
            "name": known.get("name"),
            "msisdns": list(known.get("msisdns") or []),
            "crm_manager_id": known.get("manager_id"),
            "group_id": known.get("group_id"),
            "do_not_disturb": bool(known.get("do_not_disturb")),
            "birthday": known.get("birthday"),
            "joined_on": known.get("joined_on"),
            "is_key_person": bool(known.get("is_key_person")),
            "tier": await directory.tier_of(customer_id) if directory else "NONE",
            "manager_id": await reports.assigner.manager_of(customer_id),
        }

    @router.get("/customers")
    async def find_customers(
        msisdn: Annotated[str | None, Query(min_length=4, max_length=21)] = None,
        name: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> dict[str, Any]:
        """The customers a phone number (full, or its last 4 digits or more) or a name (or
        its first characters) finds, with name, numbers, CRM manager, retention manager and
        tier; numbers and names unmasked (the gateway masks them per role)."""
        if (msisdn is None) == (name is None):
            raise Problem(400, "Bad search", "give exactly one of msisdn and name")
        if directory is None:
            raise Problem(503, "Lookup unavailable", "this service has no lookup view")
        try:
            found = await directory.find(msisdn=msisdn, name=name, limit=limit)
        except ValueError as exc:
            raise Problem(400, "Bad search", str(exc)) from None
        managers = await asyncio.gather(
            *(reports.assigner.manager_of(str(p["_id"])) for p in found)
        )
        items = [
            {
                "customer_id": p["_id"],
                "name": p.get("name"),
                "msisdns": list(p.get("msisdns") or []),
                "crm_manager_id": p.get("manager_id"),
                "manager_id": m,
                "group_id": p.get("group_id"),
                "tier": p.get("tier") or "NONE",
            }
            for p, m in zip(found, managers, strict=True)
        ]
        return {"items": items, "total": len(items)}

    @router.get("/callers/{msisdn}")
    async def caller(msisdn: Annotated[str, Path(min_length=4, max_length=21)]) -> dict[str, Any]:
        """Who holds exactly this calling number (the VIP line): tier in force, CRM and
        retention manager, do-not-disturb, and (`open_complaints`, from documents written
        since they carry it) the complaints whose clocks run. A number that moved to another
        customer lists only the customer whose profile holds it now."""
        if not isinstance(directory, ViewDirectory):
            raise Problem(503, "Lookup unavailable", "this service has no lookup view")
        try:
            items = await directory.callers(msisdn, reports.assigner.manager_of)
        except ValueError as exc:
            raise Problem(400, "Bad number", str(exc)) from None
        return {"msisdn": msisdn, "items": items}

    @router.get("/groups/{group_id}/open-tasks")
    async def group_tasks(
        group_id: Id, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        """The open retention tasks of a group's members and of the group itself (its group
        warnings), soonest due first: the warnings part of a group's 360."""
        return await tasks.open_of_group(group_id, dt.datetime.now(dt.UTC), limit)

    @router.get("/customers/{customer_id}/tasks")
    async def customer_tasks(
        customer_id: Id,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """The customer's warnings' retention tasks (open first), with their status."""
        return await tasks.of_customer(customer_id, dt.datetime.now(dt.UTC), limit, offset)

    @router.get("/reports/monthly/warnings")
    async def warnings_by_month(first: FirstMonth, last: LastMonth) -> dict[str, Any]:
        """Warnings raised per month of a range, by code, level and tier (pre-aggregated)."""
        try:
            return await reports.warnings_by_month(first, last)
        except ValueError as exc:
            raise Problem(400, "Bad range", str(exc)) from None

    @router.get("/reports/monthly/retention")
    async def retention_by_month(
        first: FirstMonth, last: LastMonth, manager_id: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        """Retention outcomes per month of a range, by manager and tier (pre-aggregated)."""
        try:
            return await reports.retention_by_month(first, last, manager_id)
        except ValueError as exc:
            raise Problem(400, "Bad range", str(exc)) from None

    @router.get("/outages/{outage_id}/notices")
    async def outage_notices(outage_id: Id) -> dict[str, Any]:
        """An outage's notices (DOMAIN §6): the high-value customers it concerns, the notices
        sent, suppressed and why, and the state of each notice."""
        found = await reports.outage(outage_id)
        if found is None:
            raise Problem(404, "Unknown outage", f"no notices of outage {outage_id}")
        return found

    @router.get("/reports/outages")
    async def outages_report(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """The latest outages announced, with their notices."""
        async with scans.slot():
            return await reports.outages(limit)

    @router.get("/reports/warnings")
    async def warnings_report() -> dict[str, Any]:
        """Warnings by code, level and tier."""
        async with scans.slot():
            return await reports.warnings()

    @router.get("/reports/tasks")
    async def tasks_report() -> dict[str, Any]:
        """Open and overdue retention tasks by manager, with each manager's portfolio."""
        async with scans.slot():
            return await reports.tasks(dt.datetime.now(dt.UTC))

    @router.get("/reports/retention")
    async def retention_report() -> dict[str, Any]:
        """Retention rate by warning code, from the outcomes of closed tasks."""
        async with scans.slot():
            return await reports.retention()

    return router


def _callback_routes(router: APIRouter, desk: CallbackDesk) -> None:
    @router.get("/managers/{manager_id}/callbacks")
    async def manager_callbacks(
        manager_id: Id,
        status: Literal["open", "overdue", "done", "all"] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """A manager's quarterly callbacks (回访), overdue first, then by planned day."""
        return await desk.of_manager(manager_id, status, dt.datetime.now(dt.UTC), limit, offset)

    @router.get("/callbacks/{callback_id}")
    async def one_callback(callback_id: CallbackId) -> dict[str, Any]:
        """One callback, its manager and status (what the gateway checks ownership by)."""
        try:
            return await desk.one(callback_id, dt.datetime.now(dt.UTC))
        except CallbackNotFound:
            raise Problem(404, "Unknown callback", f"no callback {callback_id}") from None

    @router.post("/callbacks/{callback_id}/done")
    async def callback_done(callback_id: CallbackId, body: CallbackDoneIn) -> dict[str, Any]:
        """Record a callback's outcome and notes, once; the same outcome again answers the
        first record, another is 409. It goes into the customer's contact history."""
        at = body.at or dt.datetime.now(dt.UTC)
        try:
            return await desk.done(callback_id, body.outcome, body.notes, body.by, at)
        except CallbackNotFound:
            raise Problem(404, "Unknown callback", f"no callback {callback_id}") from None
        except CallbackDone as exc:
            raise Problem(409, "Callback already done", str(exc)) from None

    @router.get("/reports/callbacks")
    async def callbacks_report(
        quarter: Annotated[str | None, Query(pattern=r"^\d{4}Q[1-4]$")] = None,
    ) -> dict[str, Any]:
        """A quarter's callbacks by manager: planned, done (by outcome), overdue."""
        now = dt.datetime.now(dt.UTC)
        q = quarter or quarter_name(now.astimezone(desk.zone).date())
        return await desk.report(q, now)
