"""Managers' work: the worklist, contacts and closing a task (their own tasks only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response

from hvc.common.problems import Problem
from hvc.gateway.api.deps import AnyId, Gateway, Gw, Limit, Offset, Who, allow, new_router, rid
from hvc.gateway.api.models import ID, CallbackDone, Close, Contact
from hvc.gateway.auth import Principal
from hvc.gateway.domain.masking import contact_view

router = new_router()


async def my_task(gw: Gateway, who: Principal, task_id: str, request: Request) -> None:
    """A manager acts on its own tasks: the task by its id, its manager compared."""
    if who.role == "supervisor":
        return
    task = await gw.warnings.task(task_id, rid(request))
    if task.get("task_id") != task_id or task.get("manager_id") != who.manager_id:
        raise Problem(404, "Task not found", f"no task {task_id} in your worklist")


def whose_list(who: Principal, manager_id: str | None) -> str:
    """The manager whose list is read: a manager's own; a supervisor names one."""
    allow(who, "manager", "supervisor")
    if who.role == "manager":
        assert who.manager_id is not None  # a manager's token names it (hvc.gateway.auth)
        return who.manager_id
    if manager_id is None:
        raise Problem(400, "Manager required", "a supervisor names the manager (manager_id)")
    return manager_id


@router.get("/worklist")
async def worklist(
    request: Request, who: Who, gw: Gw, limit: Limit = 50, offset: Offset = 0
) -> Any:
    """The calling manager's retention tasks."""
    allow(who, "manager")
    assert who.manager_id is not None  # a manager's token names it (hvc.gateway.auth)
    return await gw.warnings.worklist(who.manager_id, limit, offset, rid(request))


@router.get("/worklist/cases")
async def cases(
    request: Request,
    who: Who,
    gw: Gw,
    manager_id: Annotated[str | None, Query(max_length=64, pattern=ID)] = None,
    code: Annotated[str | None, Query(pattern=r"^[A-Z_]{1,40}$")] = None,
    tier: Annotated[str | None, Query(pattern=r"^[A-Z]{1,10}$")] = None,
    due: Literal["overdue", "today", "week"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The worklist as one case per customer (its signals and evidence, due time, priority
    by tier and level, overdue first): a manager's own; a supervisor names the manager."""
    manager_id = whose_list(who, manager_id)
    params = {"code": code, "tier": tier, "due": due, "limit": limit, "offset": offset}
    page = await gw.warnings.cases(manager_id, params, rid(request))
    for case in page.get("items", []):
        case.update(contact_view(case, who.role, gw.full_contact_roles))
    return page


@router.post("/tasks/{task_id}/contacts", status_code=201)
async def contact(
    task_id: AnyId, body: Contact, request: Request, response: Response, who: Who, gw: Gw
) -> Any:
    """Record a contact for a task (do-not-disturb and the frequency cap apply)."""
    allow(who, "manager", "supervisor")
    await my_task(gw, who, task_id, request)
    status, out = await gw.warnings.contact(
        task_id, {**body.model_dump(), "by": who.sub}, rid(request)
    )
    response.status_code = status
    return out


@router.post("/tasks/{task_id}/close")
async def close_task(task_id: AnyId, body: Close, request: Request, who: Who, gw: Gw) -> Any:
    """Close a task with its outcome (once)."""
    allow(who, "manager", "supervisor")
    await my_task(gw, who, task_id, request)
    return await gw.warnings.close(
        task_id, {**body.model_dump(), "closed_by": who.sub}, rid(request)
    )


CallbackId = Annotated[
    str, Path(min_length=1, max_length=90, pattern=r"^(CB|VI)-\d{4}Q[1-4]-[A-Za-z0-9_\-:.]+$")
]


@router.get("/worklist/callbacks")
async def callbacks(
    request: Request,
    who: Who,
    gw: Gw,
    manager_id: Annotated[str | None, Query(max_length=64, pattern=ID)] = None,
    status: Literal["open", "overdue", "done", "all"] = "open",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """Quarterly callbacks (回访) and group visits (拜访, `kind: VISIT`): a manager's own,
    overdue first; a supervisor names the manager."""
    manager_id = whose_list(who, manager_id)
    params = {"status": status, "limit": limit, "offset": offset}
    return await gw.warnings.callbacks(manager_id, params, rid(request))


@router.post("/callbacks/{callback_id}/done")
async def callback_done(
    callback_id: CallbackId, body: CallbackDone, request: Request, who: Who, gw: Gw
) -> Any:
    """Record a callback's or a visit's outcome and notes (once): the manager's own."""
    allow(who, "manager", "supervisor")
    if who.role == "manager":
        found = await gw.warnings.callback(callback_id, rid(request))
        if found.get("manager_id") != who.manager_id:
            raise Problem(404, "Callback not found", f"no callback {callback_id} on your list")
    payload = {**body.model_dump(), "by": who.sub}
    return await gw.warnings.callback_done(callback_id, payload, rid(request))
