"""Quarterly callbacks and visits in the warnings pipeline (DOMAIN §6; rules in
hvc.warnings.domain.callbacks).

- Callbacks: each customer due one (by tier or as a group key person) gets a `callbacks`
  document for the quarter, `_id` `CB-<quarter>-<customer>`, inserted once, with the account
  manager (set when a profile names one), planned day and due instant (the next quarter's
  start, local); a timer at the next quarter's start plans the next one.
- Visits: each group account of a visited class gets one, `_id` `VI-<quarter>-<group>`
  (`kind: VISIT`, the group as its customer), on the group's manager's list. The group's file
  comes from tiering on hvc.group-files.v1 (keyed by group: it lands on the group's partition,
  state key `group|<id>` beside the group warnings' months). The manager it names is the one
  the staffing step (hvc.warnings.assignment.Staffing) prefers when it first assigns the
  group, which keeps that manager after.

The HTTP side records the outcome (hvc.warnings.callback_desk)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from hvc.common import topics
from hvc.common.calendar import midnight
from hvc.common.streams import Context, State
from hvc.warnings import groups
from hvc.warnings.assignment import STAFFING_GROUP
from hvc.warnings.domain import callbacks as rules_of
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.streams import tier_at

VIEW = "callbacks"
QUARTER = "quarter"  # the timers' `what`
VISIT_QUARTER = "visit-quarter"
WAITING = 1  # the due time (ms) of a group's review waiting for its partition's first time
GROUP_FILES = topics.GROUP_FILES


def _quarter(now_ms: int, zone: ZoneInfo) -> tuple[dt.date, dt.date, dt.datetime, str]:
    """The local day at `now_ms`, its quarter's first day, the next quarter's start (the
    quarter's plans are due by it) and the quarter's name."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, zone).date()
    start = rules_of.quarter_start(today)
    return (
        today,
        start,
        midnight(rules_of.next_quarter_start(today), zone),
        rules_of.quarter_name(start),
    )


def callback_id(quarter: str, customer_id: str) -> str:
    return f"CB-{quarter}-{customer_id}"


class CallbackPlans:
    def __init__(self, rules: WarningRules) -> None:
        self.rules = rules
        self.cb = rules.callbacks

    def review(self, ctx: Context, cid: str, st: State, at_ms: int | None = None) -> None:
        """After a profile or a tier decision, and at each quarter's start: plan this quarter's
        callback if the customer is due one and has none, and keep the next quarter's timer.

        As of `at_ms` (default the partition's time): the instant the customer may have
        become due, by the tier in force then. A tier decision is reviewed as of when it took
        effect (one in force later, when it does: hvc.warnings.pipeline), not of the
        partition's time when it came: tiering publishes at its own pace, and a callback
        planned "from the day it became due" would otherwise be planned from the day the
        decision happened to arrive. Never before the quarter the partition's time is in: no
        quarter before the current one is planned."""
        if not ctx.now_ms:
            return
        now, zone = ctx.now_ms, self.rules.zone
        current = _quarter(now, zone)
        began = int(midnight(current[1], zone).timestamp() * 1000)
        at = now if at_ms is None else min(max(at_ms, began), now)
        profile = dict(st.get("crm", {}).get("profile") or {})
        tier = tier_at(st.get("tier", {}), at)
        why = rules_of.reason(tier, bool(profile.get("is_key_person")), self.cb)
        today, start, ends, quarter = current if at == now else _quarter(at, zone)
        c: dict[str, Any] = st.setdefault("cb", {})
        manager = profile.get("manager_id")
        if why is not None and c.get("q") != quarter:
            c["q"] = quarter
            doc = {
                "customer_id": cid,
                "manager_id": manager,
                STAFFING_GROUP: False,
                "kind": "CALLBACK",
                "quarter": quarter,
                "reason": why,
                "tier": tier,
                "planned_on": rules_of.planned_on(cid, start, today, self.cb).isoformat(),
                "due_at": ends,
                "status": "OPEN",
            }
            ctx.view(VIEW, callback_id(quarter, cid), doc, "insert")
            if manager is None:
                c["w"] = callback_id(quarter, cid)  # the manager is set when one is named
        if manager is not None and c.get("w"):
            doc = {"customer_id": cid, "manager_id": manager, STAFFING_GROUP: False}
            ctx.view(VIEW, c.pop("w"), doc, "set")
        if why is not None:
            due = int(ends.timestamp() * 1000)
            if c.get("t") != due:
                c["t"] = due
                ctx.schedule(due, cid, QUARTER, due)

    def fire(self, ctx: Context, cid: str, arg: Any) -> None:
        st = ctx.state(cid)
        if st.get("cb", {}).get("t") != int(arg):
            return
        st["cb"].pop("t")
        self.review(ctx, cid, st)


def visit_id(quarter: str, group_id: str) -> str:
    return f"VI-{quarter}-{group_id}"


class VisitPlans:
    def __init__(self, rules: WarningRules) -> None:
        self.rules = rules
        self.vi = rules.visits

    def filed(self, ctx: Context, message: Any) -> None:
        """A group's file (GroupFiled) on the group's partition: keep it and review."""
        gid = str(message.customer_id)
        st = ctx.state(groups.PREFIX + gid)
        st["file"] = {
            "name": message.name,
            "class": message.group_class,
            "manager_id": message.manager_id or None,
        }
        self.review(ctx, gid, st)

    def review(self, ctx: Context, gid: str, st: State, now_ms: int | None = None) -> None:
        """Plan this quarter's visit if the group is of a visited class and has none; hand an
        open one to the manager its file names now; keep the next quarter's timer. A
        partition with no time yet reviews once a record gives it one (a timer due at once,
        reviewing at the time that record brings)."""
        v: dict[str, Any] = st.setdefault("vi", {})
        now_ms = now_ms or ctx.now_ms
        if not now_ms:
            if v.get("t") is None:
                v["t"] = WAITING
                ctx.schedule(WAITING, gid, VISIT_QUARTER, WAITING)
            return
        file = st.get("file") or {}
        why = rules_of.visit_reason(str(file.get("class") or ""), self.vi)
        today, start, ends, quarter = _quarter(now_ms, self.rules.zone)
        manager = file.get("manager_id")
        if why is not None and v.get("q") != quarter:
            v["q"], v["m"] = quarter, manager
            doc = {
                "customer_id": gid,
                "manager_id": manager,
                STAFFING_GROUP: True,
                "kind": "VISIT",
                "quarter": quarter,
                "reason": why,
                "group_name": file.get("name") or "",
                "planned_on": rules_of.planned_on(gid, start, today, self.vi).isoformat(),
                "due_at": ends,
                "status": "OPEN",
            }
            ctx.view(VIEW, visit_id(quarter, gid), doc, "insert")
        elif v.get("q") == quarter and v.get("m") != manager and manager is not None:
            v["m"] = manager  # the group's manager changed: the quarter's visit is theirs
            doc = {"customer_id": gid, "manager_id": manager, STAFFING_GROUP: True}
            ctx.view(VIEW, visit_id(quarter, gid), doc, "set")
        if why is not None:
            due = int(ends.timestamp() * 1000)
            if v.get("t") != due:
                v["t"] = due
                ctx.schedule(due, gid, VISIT_QUARTER, due)

    def fire(self, ctx: Context, gid: str, arg: Any) -> None:
        st = ctx.state(groups.PREFIX + gid)
        if st.get("vi", {}).get("t") != int(arg):
            return
        st["vi"].pop("t")
        # The waiting timer fires when a record first moves the partition's time: the review
        # goes by that time, not the timer's.
        self.review(ctx, gid, st, ctx.partition_time_ms if int(arg) == WAITING else None)
