"""Retention tasks: a manager's worklist and closing a task with its outcome (TaskClosed)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.events.v1 import warnings_pb2
from hvc.warnings.repository import Repository

log = logging.getLogger(__name__)
TOPIC = "hvc.warnings.v1"
OUTCOMES = ("RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED")


class TaskNotFound(LookupError):
    pass


class TaskAlreadyClosed(RuntimeError):
    def __init__(self, closure: dict[str, Any]) -> None:
        super().__init__(f"task already closed as {closure['outcome']}")
        self.closure = closure


def view(task: dict[str, Any], closure: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    due = task["due_at"].replace(tzinfo=dt.UTC)
    return {
        "task_id": task["_id"],
        "warning_id": task["warning_id"],
        "customer_id": task["customer_id"],
        "code": task["code"],
        "level": task["level"],
        "manager_id": task.get("manager_id"),
        "opened_at": task["opened_at"].replace(tzinfo=dt.UTC).isoformat(),
        "due_at": due.isoformat(),
        "status": "CLOSED" if closure else "OPEN",
        "overdue": closure is None and due < now,
        "outcome": closure["outcome"] if closure else None,
        "closed_at": closure["closed_at"].replace(tzinfo=dt.UTC).isoformat() if closure else None,
    }


@dataclass
class Tasks:
    repo: Repository
    send: Send

    async def worklist(
        self, manager_id: str, now: dt.datetime, limit: int, offset: int
    ) -> dict[str, Any]:
        tasks, total = await self.repo.tasks_of(manager_id, limit, offset)
        closures = await self.repo.closures_of([t["_id"] for t in tasks])
        items = [view(t, closures.get(t["_id"]), now) for t in tasks]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    async def of_customer(
        self, customer_id: str, now: dt.datetime, limit: int, offset: int
    ) -> dict[str, Any]:
        tasks, total = await self.repo.tasks_of_customer(customer_id, limit, offset)
        closures = await self.repo.closures_of([t["_id"] for t in tasks])
        items = [view(t, closures.get(t["_id"]), now) for t in tasks]
        items.sort(key=lambda t: (t["status"] != "OPEN", t["due_at"]))
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    async def one(self, task_id: str, now: dt.datetime) -> dict[str, Any]:
        """One task by its id (its manager included: the gateway's ownership check)."""
        task = await self.repo.task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        closures = await self.repo.closures_of([task_id])
        return view(task, closures.get(task_id), now)

    async def close(
        self, task_id: str, outcome: str, closed_by: str, note: str, now: dt.datetime
    ) -> dict[str, Any]:
        """Close once; the same outcome again answers as the first time (a replay)."""
        task = await self.repo.task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps ms
        closure: dict[str, Any] = {
            "_id": task_id,
            "outcome": outcome,
            "closed_by": closed_by,
            "note": note,
            "closed_at": now,
            # For the retention reports, without a join:
            "customer_id": task["customer_id"],
            "code": task["code"],
            "level": task["level"],
            "manager_id": task.get("manager_id"),
        }
        if not await self.repo.close(closure):
            closure = (await self.repo.closures_of([task_id]))[task_id]
            if closure["outcome"] != outcome:
                raise TaskAlreadyClosed(closure)
        event_id = f"closed-{task_id}"
        if not await self.repo.is_published(event_id):
            m = warnings_pb2.WarningEvent(event_id=event_id, customer_id=task["customer_id"])
            m.occurred_at.FromDatetime(closure["closed_at"].replace(tzinfo=dt.UTC))
            m.task_closed.warning_id = task["warning_id"]
            m.task_closed.task_id = task_id
            m.task_closed.outcome = warnings_pb2.TaskClosed.Outcome.Value(outcome)
            await self.send(TOPIC, task["customer_id"].encode(), codec_for(TOPIC).serialize(m), [])
            await self.repo.mark_published(event_id, now)
            log.info("task closed", extra={"task_id": task_id, "outcome": outcome})
        return view(task, closure, now)
