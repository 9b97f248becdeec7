"""Retention tasks: a manager's worklist and closing a task with its outcome (TaskClosed)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.events.v1 import warnings_pb2
from hvc.warnings.documents import TOPIC
from hvc.warnings.repository import Repository

log = logging.getLogger(__name__)
OUTCOMES = ("RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED")
TIER_RANK = {"DIAMOND": 5, "PLATINUM": 4, "GOLD": 3, "SILVER": 2, "VIP": 1, "NONE": 0}
# The most tasks a manager's cases are made of (a manager has at most a few hundred
# customers, DOMAIN §2: 400 by default).
MAX_CASE_TASKS = 5000
# A group's tasks read for its open ones, latest due first (open tasks are the recent ones).
SCAN_OPEN = 5000


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
        "category": task.get("category"),
        "manager_id": task.get("manager_id"),
        "opened_at": task["opened_at"].replace(tzinfo=dt.UTC).isoformat(),
        "due_at": due.isoformat(),
        "status": "CLOSED" if closure else "OPEN",
        "overdue": closure is None and due < now,
        "outcome": closure["outcome"] if closure else None,
        "closed_at": closure["closed_at"].replace(tzinfo=dt.UTC).isoformat() if closure else None,
        "tier": task.get("tier"),
        "period": task.get("period"),
        "summary": task.get("summary"),
        "figures": task.get("figures") or {},
        "notes": task.get("notes") or {},
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

    async def cases(
        self,
        manager_id: str,
        now: dt.datetime,
        *,
        code: str | None = None,
        tier: str | None = None,
        due: str | None = None,
        limit: int = 50,
        offset: int = 0,
        profiles: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]] | None = None,
    ) -> dict[str, Any]:
        """The manager's open tasks as one case per customer: its tasks' signals and
        evidence, its earliest due time, overdue cases first, then by priority (the tier's
        rank, then the most urgent level), then by due time. Filters: a warning code, the
        tier, and `due`: `overdue`, `today` (due within 24 hours) or `week` (within 7 days)."""
        open_ = await self._open(await self.repo.open_candidates(manager_id, MAX_CASE_TASKS), now)
        horizon = {"today": dt.timedelta(days=1), "week": dt.timedelta(days=7)}.get(due or "")
        by_customer: dict[str, list[dict[str, Any]]] = {}
        for t in open_:
            by_customer.setdefault(t["customer_id"], []).append(t)
        # The customer's tier now (a task keeps the tier at its warning), name and numbers.
        known = await profiles(list(by_customer)) if profiles else {}
        cases = []
        for cid, items in by_customer.items():
            items.sort(key=lambda t: (t["level"], t["due_at"]))
            p = known.get(cid) or {}
            at_warning = next((t["tier"] for t in items if t.get("tier")), None)
            case_tier = p.get("tier") or at_warning or "NONE"
            first_due = min(t["due_at"] for t in items)
            case = {
                "customer_id": cid,
                "name": p.get("name"),
                "msisdns": list(p.get("msisdns") or []),
                "do_not_disturb": bool(p.get("do_not_disturb")),
                "tier": case_tier,
                "level": min(t["level"] for t in items),
                "due_at": first_due,
                "overdue": any(t["overdue"] for t in items),
                "codes": sorted({t["code"] for t in items}),
                "categories": sorted({t["category"] for t in items if t.get("category")}),
                "tasks": items,
            }
            if code and code not in case["codes"]:
                continue
            if tier and case_tier != tier:
                continue
            if due == "overdue" and not case["overdue"]:
                continue
            if horizon and dt.datetime.fromisoformat(first_due) >= now + horizon:
                continue
            cases.append(case)
        cases.sort(
            key=lambda c: (
                not c["overdue"],
                -TIER_RANK.get(c["tier"], 0),
                c["level"],
                c["due_at"],
            )
        )
        return {
            "items": cases[offset : offset + limit],
            "total": len(cases),
            "open_tasks": len(open_),
            "limit": limit,
            "offset": offset,
        }

    async def of_customer(
        self, customer_id: str, now: dt.datetime, limit: int, offset: int
    ) -> dict[str, Any]:
        tasks, total = await self.repo.tasks_of_customer(customer_id, limit, offset)
        closures = await self.repo.closures_of([t["_id"] for t in tasks])
        items = [view(t, closures.get(t["_id"]), now) for t in tasks]
        items.sort(key=lambda t: (t["status"] != "OPEN", t["due_at"]))
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    async def open_of_group(self, group_id: str, now: dt.datetime, limit: int) -> dict[str, Any]:
        """The open tasks of a group's members and of the group, soonest due first."""
        tasks = await self._open(await self.repo.tasks_of_group(group_id, SCAN_OPEN), now)
        items = sorted(tasks, key=lambda t: t["due_at"])
        return {"group_id": group_id, "items": items[:limit], "total": len(items)}

    async def _open(self, tasks: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
        """The views of those of `tasks` with no closure (one not marked closed yet may have
        one: the closure decides)."""
        closures = await self.repo.closures_of([t["_id"] for t in tasks])
        return [view(t, None, now) for t in tasks if t["_id"] not in closures]

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
            # What the pipeline's retention counts go by (hvc.warnings.pipeline).
            m.task_closed.manager_id = task.get("manager_id") or ""
            m.task_closed.tier = task.get("tier") or "NONE"
            m.task_closed.code = warnings_pb2.WarningRaised.Code.Value(task["code"])
            if task.get("category"):  # tasks opened before categories: the pipeline derives it
                m.task_closed.category = warnings_pb2.WarningRaised.Category.Value(task["category"])
            await self.send(TOPIC, task["customer_id"].encode(), codec_for(TOPIC).serialize(m), [])
            await self.repo.mark_published(event_id, now)
            log.info("task closed", extra={"task_id": task_id, "outcome": outcome})
        return view(task, closure, now)
