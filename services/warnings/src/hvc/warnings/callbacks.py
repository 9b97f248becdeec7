"""Quarterly callbacks in the warnings pipeline (DOMAIN §6; rules in
hvc.warnings.domain.callbacks): each customer due one (by tier or as a group key person) gets a
`callbacks` document for the quarter, `_id` `CB-<quarter>-<customer>`, inserted once, with the
account manager (set when a profile names one), planned day and due instant (the next
quarter's start, local); a timer at the next quarter's start plans the next one. The HTTP
side records the outcome (hvc.warnings.callbacks_api)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hvc.common.calendar import midnight
from hvc.common.streams import Context, State
from hvc.warnings.assignment import STAFFING_GROUP
from hvc.warnings.domain import callbacks as rules_of
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.streams import latest_tier

VIEW = "callbacks"
QUARTER = "quarter"  # the timers' `what`


def callback_id(quarter: str, customer_id: str) -> str:
    return f"CB-{quarter}-{customer_id}"


class CallbackPlans:
    def __init__(self, rules: WarningRules) -> None:
        self.rules = rules
        self.cb = rules.callbacks

    def review(self, ctx: Context, cid: str, st: State) -> None:
        """After a profile or a tier decision, and at each quarter's start: plan this quarter's
        callback if the customer is due one and has none, and keep the next quarter's timer."""
        if not ctx.now_ms:
            return
        profile = dict(st.get("crm", {}).get("profile") or {})
        tier = latest_tier(st.get("tier", {}))
        why = rules_of.reason(tier, bool(profile.get("is_key_person")), self.cb)
        zone = self.rules.zone
        today = dt.datetime.fromtimestamp(ctx.now_ms / 1000, zone).date()
        start = rules_of.quarter_start(today)
        ends = midnight(rules_of.next_quarter_start(today), zone)  # the next quarter's start
        quarter = rules_of.quarter_name(start)
        c: dict[str, Any] = st.setdefault("cb", {})
        manager = profile.get("manager_id")
        if why is not None and c.get("q") != quarter:
            c["q"] = quarter
            doc = {
                "customer_id": cid,
                "manager_id": manager,
                STAFFING_GROUP: profile.get("group_id"),
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
            ctx.view(VIEW, c.pop("w"), {"manager_id": manager}, "set")
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
