"""Care touches (DOMAIN §6, from 000): bill-due reminders, benefit-expiry reminders and
birthday greetings to the programme's customers, with Chinese templates (hvc.warnings
templates), under the outbound contact rules: never a customer who asked not to be disturbed,
and at most one outbound touch per `contact_min_interval_days` (7 by default).

Decided in the warnings pipeline, beside the profile, the tier and the accounts they need:
- a bill-due reminder when the daily close finds an unpaid bill due within N days (the
  condition of PAYMENT_DUE_SOON, whose warning goes to the manager at the same time);
- a benefit-expiry reminder N days (`care.benefit_expiry_days`) before a grant that is not
  used up ends (hvc.benefits.v1, co-partitioned, is an input for it);
- a birthday greeting at `care.birthday_hour` local on the birthday (a timer per customer,
  set again for the next year).

Each touch is a NotificationRequested (id `care|<kind>|<customer>|<occasion>`, the same on
every replay), a contact history entry (`kind: CARE`), and, when withheld, a count of why.
The interval is kept in the customer's state: the touches count against each other, and
the contact history holds them for the HTTP side's check of a manager's outbound contact."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hvc.common import monthly
from hvc.common.streams import Context, State
from hvc.warnings import messages
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.domain.templates import Templates
from hvc.warnings.streams import tier_at

CARE = "care"  # the timers' `what`
MONTHLY = "care_monthly"  # touches per month: sent and withheld by kind and reason
KEEP_GRANTS = 32
KEEP_LATE = 12  # touches withheld for want of a tier, kept for a decision that comes late


def next_birthday(birthday: dt.date, after: dt.date) -> dt.date:
    """The first birthday on or after `after` (29 February on the 28th in other years)."""
    for year in (after.year, after.year + 1):
        try:
            day = birthday.replace(year=year)
        except ValueError:
            day = dt.date(year, 2, 28)
        if day >= after:
            return day
    raise AssertionError("unreachable")


class CareTouches:
    def __init__(self, rules: WarningRules, templates: Templates) -> None:
        self.rules, self.templates = rules, templates
        self.care = rules.care

    # -- occasions ---------------------------------------------------------------------------

    def profile(self, ctx: Context, cid: str, st: State, profile: dict[str, Any]) -> None:
        """A profile with a birthday: the greeting's timer at its next birthday."""
        if "birthday" not in self.care.kinds or not profile.get("birthday"):
            return
        born = dt.date.fromisoformat(str(profile["birthday"]))
        zone = self.rules.zone
        today = dt.datetime.fromtimestamp(ctx.now_ms / 1000, zone).date() if ctx.now_ms else None
        if today is None:
            return  # no time yet: the next record of the partition gives one

        def greeting_ms(day: dt.date) -> int:
            at = dt.datetime.combine(day, dt.time(self.care.birthday_hour), zone)
            return int(at.timestamp() * 1000)

        day = next_birthday(born, today)
        if greeting_ms(day) <= ctx.now_ms:  # today's greeting hour has passed: next year's
            day = next_birthday(born, day + dt.timedelta(days=1))
        due_ms = greeting_ms(day)
        c = st.setdefault("care", {})
        if c.get("bday") == due_ms:
            return
        c["bday"] = due_ms
        ctx.schedule(due_ms, cid, CARE, ["birthday", day.isoformat(), due_ms])

    def benefit(self, ctx: Context, cid: str, st: State, message: Any) -> None:
        """hvc.benefits.v1: grants and their use, for the expiry reminder."""
        kind = message.WhichOneof("payload")
        b = getattr(message, kind)
        grants: dict[str, list[Any]] = st.setdefault("grants", {})
        if kind == "benefit_granted":
            valid_to = b.valid_to.ToMilliseconds() if b.HasField("valid_to") else 0
            if b.grant_id in grants or not valid_to or b.quantity <= 0:
                return
            grants[b.grant_id] = [b.code, valid_to, b.quantity, 0]
            for old in sorted(grants, key=lambda g: grants[g][1])[:-KEEP_GRANTS]:
                del grants[old]
            due = valid_to - self.care.benefit_expiry_days * 86_400_000
            if "benefit-expiry" not in self.care.kinds or b.valid_from.ToMilliseconds() > due:
                return  # valid for less than the reminder's notice: nothing to remind of
            if due > ctx.now_ms:
                ctx.schedule(due, cid, CARE, ["benefit-expiry", b.grant_id, due])
            else:  # learnt of after its reminder's time (a replay, a late service): as of then
                self.fire(ctx, cid, ["benefit-expiry", b.grant_id, due])
        elif b.grant_id in grants:
            g = grants[b.grant_id]
            if kind == "benefit_claimed":
                used: list[str] = g[4] if len(g) > 4 else []
                if message.event_id not in used:  # a redelivered claim counts once
                    g[3] += max(1, b.quantity)
                    g[4:] = [[*used, message.event_id][-8:]]
            else:  # revoked or expired: nothing to remind of
                g[3] = g[2]

    def bill_due(
        self, ctx: Context, cid: str, st: State, period: str, due_on: str, amount_fen: int
    ) -> None:
        """The daily close found the bill of `period` unpaid and due soon."""
        if "bill-due" not in self.care.kinds:
            return
        params = {"period": period, "due_on": due_on, "amount": f"{amount_fen / 100:.2f}"}
        self._touch(ctx, cid, st, "bill-due", period, params)

    def fire(self, ctx: Context, cid: str, arg: Any) -> None:
        kind, occasion, due = str(arg[0]), str(arg[1]), int(arg[2])
        st = ctx.state(cid)
        if kind == "birthday":
            if st.get("care", {}).get("bday") != due:
                return  # the profile moved the birthday since
            st["care"].pop("bday")
            self._touch(ctx, cid, st, "birthday", occasion, {}, due)
            profile = dict(st.get("crm", {}).get("profile") or {})
            self.profile(ctx, cid, st, profile)  # next year's
        elif kind == "benefit-expiry":
            g = st.get("grants", {}).get(occasion)
            if g is None or g[3] >= g[2]:
                return  # used up, revoked or expired meanwhile
            to = dt.datetime.fromtimestamp(g[1] / 1000, dt.UTC)
            params = {"benefit": str(g[0]), "ends_at": to.isoformat(), "left": str(g[2] - g[3])}
            self._touch(ctx, cid, st, "benefit-expiry", occasion, params, due)

    def tier_known(self, ctx: Context, cid: str, st: State, effective_ms: int) -> None:
        """A tier decision: the touches withheld for want of a programme tier at an instant it
        is in force by are decided again, in the order of their occasions and as of them (the
        contact cap too), with the tier now known: the same touches as if the decision had
        come in time, however late it came (a late upgrade sends them; a late downgrade takes
        nothing back)."""
        late: list[list[Any]] = st.get("care", {}).get("late") or []
        if not late:
            return
        st["care"]["late"] = []
        for kind, occasion, params, at in sorted(late, key=lambda x: int(x[3])):
            if int(at) < effective_ms:
                st["care"]["late"].append([kind, occasion, params, at])  # not in force then
                continue
            self._touch(ctx, cid, st, str(kind), str(occasion), dict(params), int(at))

    @staticmethod
    def contacted(st: State, logged: Any) -> None:
        """An outbound contact the HTTP side recorded (a manager's call, a callback, a visit):
        the next touch within the contact interval of it is withheld, as the HTTP side
        refuses a manager's contact within the interval of a touch. The latest is kept."""
        if logged.direction != "OUTBOUND":
            return
        c: dict[str, Any] = st.setdefault("care", {})
        c["last"] = max(int(c.get("last") or 0), int(logged.at.ToMilliseconds()))

    # -- the touch ---------------------------------------------------------------------------

    def _touch(
        self,
        ctx: Context,
        cid: str,
        st: State,
        kind: str,
        occasion: str,
        params: dict[str, str],
        at_ms: int | None = None,
    ) -> None:
        """A touch on its occasion (`at_ms`, default the partition's time): the contact cap
        is counted in occasions' time, so a touch decided late is capped as it would have
        been in time."""
        c: dict[str, Any] = st.setdefault("care", {})
        nid = f"care|{kind}|{cid}|{occasion}"
        done: list[str] = c.setdefault("done", [])
        if nid in done:
            return  # decided already (a close or a timer decides it again after a replay)
        done.append(nid)
        del done[:-16]
        profile = dict(st.get("crm", {}).get("profile") or {})
        now = ctx.now_ms if at_ms is None else at_ms
        tier = tier_at(st.get("tier", {}), now)  # in force on the occasion
        month = monthly.month_of(dt.datetime.fromtimestamp(now / 1000, dt.UTC), self.rules.zone)
        interval = self.rules.contact_min_interval_days * 86_400_000
        why = None
        if tier not in self.care.tiers:
            # Not in the programme, as far as is known now: a decision in force by then that
            # comes later (tiering publishes at its own pace) decides it again (`tier_known`).
            late: list[list[Any]] = c.setdefault("late", [])
            late.append([kind, occasion, params, now])
            del late[:-KEEP_LATE]
            done.remove(nid)
            return
        if profile.get("do_not_disturb"):
            why = "DO_NOT_DISTURB"
        elif c.get("last") is not None and abs(now - int(c["last"])) < interval:
            why = "FREQUENCY_CAP"
        if why is not None:
            monthly.add(ctx, MONTHLY, month, {f"withheld|{kind}|{why}": 1})
            return
        c["last"] = max(now, int(c.get("last") or 0))
        params = {**params, "tier": tier, "name": str(profile.get("name") or "")}
        text = self.templates.render(kind, params, self.rules.zone)
        when = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
        messages.send(
            ctx,
            nid,
            cid,
            template=kind,
            params=params,
            text=text,
            channel=self.care.channel,
            at=when,
            kind="CARE",
            by="system:care",
        )
        monthly.add(ctx, MONTHLY, month, {f"sent|{kind}": 1})
