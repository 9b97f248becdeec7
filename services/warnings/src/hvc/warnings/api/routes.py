"""The warnings service's HTTP side: managers' worklists and closing retention tasks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from hvc.common.problems import Problem
from hvc.warnings.tasks import TaskAlreadyClosed, TaskNotFound, Tasks

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]


class CloseRequest(BaseModel):
    outcome: Literal["RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED"]
    closed_by: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)


def make_router(tasks: Tasks) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["warnings"])

    @router.get("/managers/{manager_id}/tasks")
    async def worklist(
        manager_id: Id,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """A manager's retention tasks, soonest due first, with status and overdue flag."""
        return await tasks.worklist(manager_id, dt.datetime.now(dt.UTC), limit, offset)

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

    return router
