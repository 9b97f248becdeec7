"""The warnings service on hvc.common.streams (issue 19): one pipeline over its five
co-partitioned inputs, each customer's profile, tier, calls, usage and accounts in one state.

A warning is decided with what the customer's state holds when the record is handled: the
profile and the tier published before it are in that state whatever the replica count (the
engine aligns the inputs in time and one consumer holds all of a customer's partitions), which
the process-local directory of the keyed runtime could not promise at two replicas.

The rules are the processors' of `hvc.warnings.streams`, which return their raises as data.
Closes are per customer: a customer with an unpaid bill has a daily close timer at the
midnights its bills can raise at, one with usage or contracts a monthly one, each at the
boundary plus the grace for late events, in event time;
a close's decision time is the boundary itself, so a replay decides the same.

A raise becomes, in the same handling: WarningRaised on hvc.warnings.v1 (event id = warning
id), the `warnings` view document and the `tasks` view document, both in the shape the API
reads, written once (a replay does not reopen a task the HTTP side closed). The task names the
CRM's manager, and staffing rule 003 (`hvc.warnings.assignment.Staffing`) decides the manager
it goes to as the view is written; a task opened before any profile is kept in the state, and
given the profile's manager when the profile comes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

from hvc.common import monthly, topics
from hvc.common.calendar import midnight
from hvc.common.codec import instant
from hvc.common.streams import Context, Record, State, View, ViewMode
from hvc.events.v1 import complaints_pb2, staff_pb2, warnings_pb2
from hvc.warnings import callbacks, care, groups, outages, streams
from hvc.warnings.assignment import STAFFING_GROUP, STAFFING_KEYS
from hvc.warnings.directory import LOOKUP, caller_doc, is_number_key, lookup_keys
from hvc.warnings.documents import TOPIC, task_doc, warning_doc, warning_message
from hvc.warnings.domain.rules import Code, WarningRules
from hvc.warnings.domain.templates import DEFAULT_TEMPLATES, Templates, load_templates

DAILY, MONTHLY_CLOSE = "daily", "monthly"
# The warnings raised per month by code, level and tier (hvc.common.monthly).
MONTHLY = "warnings_monthly"
RETENTION = "retention_monthly"  # closes per month by outcome, manager and tier
PARTS = {  # input topic -> the part of the customer's state its rules keep
    "network.calls.v1": "calls",
    "billing.usage.v1": "usage",
    "billing.accounts.v1": "accounts",
    "crm.customers.v1": "crm",
    "hvc.tier-decisions.v1": "tier",
}
# Its own output too: a task's close (TaskClosed, published by the HTTP side) is counted in
# the month's retention here, once, in the partition's state (hvc.common.monthly).
BENEFITS = "hvc.benefits.v1"  # grants and their use, for the care touches (hvc.warnings.care)
# Outages (hvc.warnings.outages): read in one partition, copied to every partition.
# Members' warnings (hvc.warnings.groups): sent to their group's partition.
# Group files (tiering's, keyed by group): the groups' visits (hvc.warnings.callbacks).
# The complaints service's changes: which of a customer's complaints are open, for the VIP
# line's answer in the `lookup` view (hvc.warnings.directory.OPEN).
COMPLAINTS = "hvc.complaints.v1"
# What stops a complaint's clocks (hvc.complaints.domain.lifecycle.STOPPED: the complaints
# service's `open_complaints` view leaves these out too).
STOPPED = frozenset({"RESOLVED", "CALLBACK_DONE", "CLOSED"})
# Warning ids counted per customer (below): four times the raised-signal memo
# (streams.KEEP_RAISED), which decides what is raised at all. A warning raised again is one
# that fell out of that memo (32 newer ones came after it); it is still counted here unless
# 128 newer ones of the customer did.
KEEP_COUNTED = 4 * streams.KEEP_RAISED
# Warnings per customer whose tier follows the tier decisions that come after them
# (`WarningsHandler._retier`): a decision late by more than this many newer warnings of the
# customer leaves the older ones the tier they had.
KEEP_TIERED = streams.KEEP_RAISED
INPUTS = [
    *PARTS,
    TOPIC,
    BENEFITS,
    outages.OUTAGES,
    outages.FANOUT,
    groups.SIGNALS,
    callbacks.GROUP_FILES,
    COMPLAINTS,
]
TIERS = "hvc.tier-decisions.v1"
TIER_DUE = "tier-due"  # the timers' `what`: a tier decision takes effect (in force later)
ACCOUNTS = "billing.accounts.v1"


def _dailies(pending: dict[str, Any]) -> list[int]:
    """The daily closes set for a customer (one boundary, as states before them kept it)."""
    got = pending.get(DAILY)
    if got is None:
        return []
    return [int(got)] if isinstance(got, int) else [int(b) for b in got]


class WarningsHandler:
    # The `lookup` documents after the staffed views: those written in the same checkpoint
    # carry the manager staffing has just given.
    last_views = (LOOKUP,)

    def __init__(
        self,
        rules: WarningRules,
        grace_s: int,
        usage_lateness_s: int,
        templates: Templates | None = None,
    ) -> None:
        self.rules = rules
        templates = templates or load_templates(DEFAULT_TEMPLATES)
        self.outages = outages.OutageNotices(rules, templates)
        self.care = care.CareTouches(rules, templates)
        self.callbacks = callbacks.CallbackPlans(rules)
        self.visits = callbacks.VisitPlans(rules)
        self.grace_s = grace_s
        self.processors: dict[str, Any] = {
            p.topic: p for p in streams.processors(rules, grace_s, usage_lateness_s)
        }
        self.closers = {
            DAILY: [self.processors["billing.accounts.v1"]],
            MONTHLY_CLOSE: [
                self.processors["billing.usage.v1"],
                self.processors["crm.customers.v1"],
            ],
        }

    # -- the pipeline's handler --------------------------------------------------------------

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        if topic in (
            outages.OUTAGES,
            outages.FANOUT,
            BENEFITS,
            groups.SIGNALS,
            callbacks.GROUP_FILES,
            COMPLAINTS,
        ):
            # An outage is announced in the network's time, not the feed's (a replayed feed's
            # partitions would be moved ahead by it and close days early); the benefits
            # service's decisions are stamped with its own time; a member's warning comes
            # from another partition's time; a group's file, tiering's; a complaint's change,
            # the complaints service's clock's. None moves a partition.
            return 0
        if topic in (TIERS, TOPIC):  # a close's occurred_at is wall time too
            # Not the feed's time: a decision's occurred_at is when tiering decided (wall
            # time), and its effective_from may be ahead (an annual run's new year). It moves
            # no clock; the partition's time stays what the other inputs made it.
            return 0
        return int(message.occurred_at.ToMilliseconds())

    def handle(self, ctx: Context, topic: str, message: Any) -> None:
        self._handle(ctx, topic, message)
        self._staffed(ctx)

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        self._fire(ctx, key, what, arg)
        self._staffed(ctx)

    def _handle(self, ctx: Context, topic: str, message: Any) -> None:
        if topic == outages.OUTAGES:
            self.outages.fan_out(ctx, message)
            return
        if topic == outages.FANOUT:
            self.outages.handle(ctx, message)
            return
        if topic == callbacks.GROUP_FILES:
            self.visits.filed(ctx, message)
            return
        if topic == groups.SIGNALS:
            found = groups.warned(ctx, message, self.rules)
            if found is not None:
                gid, signal, manager = found
                at = instant(message.occurred_at)
                key = groups.PREFIX + gid
                raised = [streams.Raise(gid, signal, at)]
                self._publish(ctx, gid, ctx.state(key), raised, manager, is_group=True)
            return
        cid = str(message.customer_id)
        if not cid:
            return  # GroupUpserted is keyed by group: no customer state
        if topic == TOPIC:
            kind = message.WhichOneof("payload")
            if kind == "task_closed":
                self._closed(ctx, cid, message)
            elif kind == "contact_logged":  # the HTTP side's: the care touches' contact cap
                self.care.contacted(ctx.state(cid), message.contact_logged)
            return  # its own WarningRaised: decided here already
        if topic == COMPLAINTS:
            self._complaint(ctx, cid, message)
            return
        st = ctx.state(cid)
        if topic == BENEFITS:
            self.care.benefit(ctx, cid, st, message)
            return
        part = st.setdefault(PARTS[topic], {})
        processor = self.processors[topic]
        standing = self.outages.standing(ctx, st) if topic == TIERS else {}
        raises = list(processor.apply(message, part))
        self._schedule_closes(ctx, cid, st, accounts=topic == ACCOUNTS)
        self._publish(ctx, cid, st, raises)
        if topic == "crm.customers.v1":
            self._assign_waiting(ctx, cid, st)
        if topic == TIERS:
            self._retier(ctx, st)
            effective_ms = message.effective_from.ToMilliseconds()
            self.care.tier_known(ctx, cid, st, effective_ms)
            self.outages.tier_known(ctx, cid, st, effective_ms)
            self.outages.restand(ctx, st, standing)
            if ctx.now_ms and effective_ms > ctx.now_ms:  # in force later: looked at then
                ctx.schedule(effective_ms, cid, TIER_DUE, effective_ms)
            else:
                self.callbacks.review(ctx, cid, st, effective_ms)
        if topic == "crm.customers.v1":
            self.callbacks.review(ctx, cid, st)
        if topic in ("crm.customers.v1", "hvc.tier-decisions.v1"):
            doc = self._profile_views(ctx, cid, st)
            if topic == "crm.customers.v1":
                self.outages.index(ctx, cid, st, doc)
                self.care.profile(ctx, cid, st, doc)

    def _profile_views(self, ctx: Context, cid: str, st: State) -> dict[str, Any]:
        """The `profiles` and `lookup` documents of the profile with the tier in force at the
        partition's time (`_tier`); returns the profile's. Written when they changed (most
        customer records are plans and contracts, most decisions repeat a tier): a whole
        document rewritten costs the store per write."""
        doc = {**_profile(st), "tier": _tier(st, ctx.now_ms)}
        digest = _digest(doc)
        if st.get("pv") != digest:
            mode: ViewMode = "replace" if "pv" in st else "fresh"  # fresh: its first
            st["pv"] = digest
            ctx.view("profiles", cid, doc, mode)
        # Its own comparison (a state from before the lookup view has none written).
        self._index(ctx, cid, st, doc)
        return doc

    def _fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        if what == outages.NOTICE:
            self.outages.fire(ctx, key, arg)
            return
        if what == care.CARE:
            self.care.fire(ctx, key, arg)
            return
        if what == callbacks.QUARTER:
            self.callbacks.fire(ctx, key, arg)
            return
        if what == TIER_DUE:  # a decision takes effect: the time is its effective time
            st = ctx.state(key)
            self.callbacks.review(ctx, key, st)
            self._profile_views(ctx, key, st)
            return
        if what == callbacks.VISIT_QUARTER:
            self.visits.fire(ctx, key, arg)
            return
        st = ctx.state(key)
        boundary_s = int(arg)
        raises: list[streams.Raise] = []
        for processor in self.closers[what]:
            part = st.setdefault(_part_of(processor), {})
            raises += processor.close(
                {key: part}, boundary_s + self.grace_s - 1, boundary_s + self.grace_s
            )
        pending = st.setdefault("timers", {})
        if what == DAILY:
            pending[DAILY] = [b for b in _dailies(pending) if b != boundary_s]
        else:
            pending.pop(what, None)
        self._schedule_closes(ctx, key, st)
        self._publish(ctx, key, st, raises)

    # -- closes ------------------------------------------------------------------------------

    def _schedule_closes(self, ctx: Context, cid: str, st: State, *, accounts: bool = True) -> None:
        """The closes the state needs, each at its boundary plus the grace.

        Monthly: one pending at a time, at the next first of a month, for a customer with
        usage or contracts. Daily: only at the midnights where the accounts' daily close can
        raise something (`Accounts.next_close_day`: an unpaid bill's first day due soon, the
        day after its due day), not every midnight for every customer with a bill — the close
        of any other day raises nothing, so the warnings are the same, and a day no bill falls
        due is no longer a close of every customer of the partition at once. Looked at again
        when the accounts change (`accounts`) or a close fired; a day earlier than those
        pending is added (a timer once set fires; a close that finds nothing does nothing)."""
        pending: dict[str, Any] = st.setdefault("timers", {})
        now_s = ctx.now_ms // 1000
        if MONTHLY_CLOSE not in pending and (
            st.get("usage", {}).get("m") or st.get("crm", {}).get("contracts")
        ):
            boundary = _next_boundary(now_s - self.grace_s, self.rules.zone, monthly=True)
            pending[MONTHLY_CLOSE] = boundary
            ctx.schedule((boundary + self.grace_s) * 1000, cid, MONTHLY_CLOSE, boundary)
        if DAILY in pending and not accounts:
            return  # set, or looked for since the accounts last changed ([])
        dailies = pending[DAILY] = _dailies(pending)
        if not st.get("accounts", {}).get("bills"):
            return
        first = _next_boundary(now_s - self.grace_s, self.rules.zone, monthly=False)
        zone = self.rules.zone
        day = self.processors[ACCOUNTS].next_close_day(
            st["accounts"], dt.datetime.fromtimestamp(first, zone).date()
        )
        if day is None:
            return
        boundary = int(midnight(day, zone).timestamp())
        if dailies and boundary >= min(dailies):
            return  # the earlier close looks again when it fires
        pending[DAILY] = sorted([*dailies, boundary])
        ctx.schedule((boundary + self.grace_s) * 1000, cid, DAILY, boundary)

    # -- raising -----------------------------------------------------------------------------

    def _publish(
        self,
        ctx: Context,
        cid: str,
        st: State,
        raises: list[streams.Raise],
        manager: str | None = None,
        *,
        is_group: bool = False,
    ) -> None:
        """`manager`: a group warning's (hvc.warnings.groups; its state has no profile);
        `is_group`: the warning's customer is a group account (staffed as one)."""
        manager = manager or _profile(st).get("manager_id")
        group = _profile(st).get("group_id")  # the customer's group: told of its warnings
        for r in raises:
            at_ms = int(r.at.timestamp() * 1000)
            tier = streams.tier_at(st.get("tier", {}), at_ms)  # in force at the warning
            warning = warning_doc(cid, r.signal, r.at, tier, self.rules)
            wid, level = warning["warning_id"], warning["level"]
            task = task_doc(warning, manager, self.rules)
            # Decided once: a replay after a crash writes them again, and must not reopen a
            # task the HTTP side has closed since. The tier again as a `set`: a replay's
            # insert finds the documents there, and the tier decisions known may be more
            # than when they were written (the writer drops it where the insert wrote them).
            ctx.view("warnings", warning["_id"], warning, "insert")
            ctx.view("tasks", wid, {**task, STAFFING_GROUP: is_group}, "insert")
            ctx.view("warnings", warning["_id"], {"tier": tier}, "set")
            ctx.view("tasks", wid, {"tier": tier}, "set")
            if manager is None:  # kept until a profile names one (and the manager is told)
                st.setdefault("waiting", {})[wid] = [level, warning["code"], r.signal.period, at_ms]
            ctx.emit(TOPIC, cid, warning_message(wid, cid, r.signal, r.at, self.rules))
            # Counted once: a close can raise a warning again (its id, its documents and its
            # event are the same, so nothing downstream sees it twice; a count would).
            counted: list[str] = st.setdefault("wc", [])
            if wid in counted:
                continue
            counted.append(wid)
            del counted[:-KEEP_COUNTED]
            if not is_group:  # its tier follows the decisions that come after it (_retier)
                tiered: dict[str, list[Any]] = st.setdefault("wt", {})
                tiered[wid] = [at_ms, tier, warning["_id"]]
                for old in list(tiered)[:-KEEP_TIERED]:
                    del tiered[old]
            if r.signal.code is Code.PAYMENT_DUE_SOON:  # the customer is reminded too
                bill = st.get("accounts", {}).get("bills", {}).get(r.signal.period, {})
                due_on = str(r.signal.notes.get("due_on", ""))
                self.care.bill_due(
                    ctx, cid, st, r.signal.period, due_on, int(bill.get("amount", 0))
                )
            if manager is not None:
                self._notify(ctx, cid, manager, wid, level, warning["code"], r.signal.period, r.at)
            code, category = warning["code"], warning["category"]
            month = monthly.month_of(r.at, self.rules.zone)
            if group and r.signal.code is not Code.GROUP_MEMBER_CHURN:  # to the group's partition
                groups.signal(ctx, group, cid, wid, code, month, manager, r.at)
            monthly.add(
                ctx,
                MONTHLY,
                month,
                {
                    "total": 1,
                    f"code:{code}": 1,
                    f"level:{level}": 1,
                    f"tier:{tier}": 1,
                    f"category:{category}": 1,
                },
            )

    def _retier(self, ctx: Context, st: State) -> None:
        """A tier decision has come: the customer's latest warnings (`wt`: the last
        KEEP_TIERED counted) whose tier in force it changes take that tier, in their
        documents and in their month's counts. So a warning's tier is the one in force at it
        by every decision made, not by those that had arrived when it was raised: tiering
        publishes at its own pace, and a decision caused before a warning may come after it
        (tiering behind or restarting), which left the warning the tier before."""
        tiered: dict[str, list[Any]] = st.get("wt") or {}
        tiers = st.get("tier", {})
        for wid, (at_ms, was, doc_id) in tiered.items():
            tier = streams.tier_at(tiers, int(at_ms))
            if tier == was:
                continue
            tiered[wid] = [at_ms, tier, doc_id]
            ctx.view("warnings", doc_id, {"tier": tier}, "set")
            ctx.view("tasks", wid, {"tier": tier}, "set")
            at = dt.datetime.fromtimestamp(int(at_ms) / 1000, dt.UTC)
            month = monthly.month_of(at, self.rules.zone)
            monthly.add(ctx, MONTHLY, month, {f"tier:{was}": -1, f"tier:{tier}": 1})

    def _closed(self, ctx: Context, cid: str, message: Any) -> None:
        """A task's close, counted once (a redelivery finds its task id in the state) in the
        month it was closed: by outcome, and by outcome with the manager and with the tier at
        the warning."""
        c = message.task_closed
        st = ctx.state(cid)
        closed: list[str] = st.setdefault("closed", [])
        if c.task_id in closed:
            return
        closed.append(c.task_id)
        outcome = warnings_pb2.TaskClosed.Outcome.Name(c.outcome)
        month = monthly.month_of(instant(message.occurred_at), self.rules.zone)
        category = self._category(c)
        counts = {
            f"outcome:{outcome}": 1,
            f"category|outcome:{category}|{outcome}": 1,
            f"manager|outcome:{c.manager_id or '-'}|{outcome}": 1,
            f"tier|outcome:{c.tier or 'NONE'}|{outcome}": 1,
        }
        monthly.add(ctx, RETENTION, month, counts)

    def _category(self, closed: Any) -> str:
        """The close's category; a task opened before categories has its code's under the rule
        set, and a close from before codes were carried has none (UNKNOWN)."""
        if closed.HasField("category"):
            return str(warnings_pb2.WarningRaised.Category.Name(closed.category))
        if not closed.HasField("code"):
            return "UNKNOWN"
        return self.rules.category_of(warnings_pb2.WarningRaised.Code.Name(closed.code))

    def _complaint(self, ctx: Context, cid: str, message: Any) -> None:
        """A complaint's change: the customer's open complaints (`cq`: id -> [status, SLA
        state]) follow it, as the complaints service's `open_complaints` view does, and the
        number documents of the `lookup` view carry them. Its changes come in the order the
        complaints service made them (one key, one partition); one delivered again (that
        service replaying its last checkpoint) is followed by those that came after it
        again, so the state ends as the last change left it."""
        kid = str(message.complaint_id)
        status = complaints_pb2.ComplaintUpdated.Status.Name(message.status)
        sla = complaints_pb2.ComplaintUpdated.SlaState.Name(message.sla_state)
        st = ctx.existing(cid)
        if not kid or (st is None and status in STOPPED):
            return  # nothing open to forget, no state to create
        st = ctx.state(cid)
        before: dict[str, list[str]] = st.get("cq") or {}
        summary = dict(before)
        if status in STOPPED:
            summary.pop(kid, None)
        else:
            summary[kid] = [status, sla]
        if summary == before:
            return
        if summary:
            st["cq"] = summary
        else:
            st.pop("cq", None)
        self._index(ctx, cid, st, {**_profile(st), "tier": _tier(st, ctx.now_ms)})

    def _index(self, ctx: Context, cid: str, st: State, profile: dict[str, Any]) -> None:
        """The `lookup` view's documents of the profile with its tier (hvc.warnings.directory):
        the keys it no longer has removed and the new ones written. A number's documents
        carry what the VIP line answers (`caller_doc`), and are written again when that
        changed (a new tier, say); the staffing step adds the retention manager to each as
        it writes it. A name's document is the customer alone, written once (a search by
        name reads the profiles). The state keeps the keys written and a digest of what the
        numbers' documents carry."""
        keys = lookup_keys(cid, profile)
        doc = caller_doc(cid, profile, _open_complaints(st))
        digest = _digest(doc)
        before = set(st.get("lk") or ())
        changed = st.get("lf") != digest
        for gone in sorted(before - keys):
            ctx.view(LOOKUP, gone, None)
        for key in sorted(keys):
            if not is_number_key(key):
                if key not in before:
                    ctx.view(LOOKUP, key, {"customer_id": cid}, "insert")
            elif key not in before:
                ctx.view(LOOKUP, key, doc, "fresh")
            elif changed:
                ctx.view(LOOKUP, key, doc, "replace")
        if keys != before:
            st["lk"] = sorted(keys)
        st["lf"] = digest

    def _staffed(self, ctx: Context) -> None:
        """Each view of this record that goes to staffing (a task, a callback, a visit) names
        its customer's number keys in the `lookup` view (`STAFFING_KEYS`): the staffing step
        writes the manager it gives into those documents (hvc.warnings.assignment.Staffing).
        A customer whose state this partition does not hold, or without numbers, has none."""
        for i, v in enumerate(ctx.views):
            if v.doc is None or STAFFING_GROUP not in v.doc or "customer_id" not in v.doc:
                continue
            st = ctx.existing(str(v.doc["customer_id"]))
            numbers = [k for k in (st or {}).get("lk") or () if is_number_key(k)]
            if numbers:
                ctx.views[i] = View(v.collection, v.id, {**v.doc, STAFFING_KEYS: numbers}, v.mode)

    def _assign_waiting(self, ctx: Context, cid: str, st: State) -> None:
        manager = _profile(st).get("manager_id")
        waiting: dict[str, Any] = st.get("waiting", {})
        if manager is None or not waiting:
            return
        for wid, raised in waiting.items():
            doc = {"customer_id": cid, "manager_id": manager, STAFFING_GROUP: False}
            ctx.view("tasks", wid, doc, "set")
            if isinstance(raised, list):  # (a warning kept before this carries no details)
                level, code, period, at_ms = raised
                at = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
                self._notify(ctx, cid, manager, wid, level, code, period, at)
        st.pop("waiting")

    def _notify(
        self,
        ctx: Context,
        cid: str,
        manager: str,
        wid: str,
        level: int,
        code: str,
        period: str,
        at: dt.datetime,
    ) -> None:
        """A level-1 warning reaches its customer's account manager (DOMAIN §6): StaffNotified,
        once per warning (its id the warning's), when the warning has a manager."""
        if level != 1:
            return
        event_id = f"sn:{wid}"
        n = staff_pb2.StaffNotificationEvent(event_id=event_id, customer_id=cid)
        n.occurred_at.FromDatetime(at)
        s = n.staff_notified
        s.notification_id, s.staff_id, s.role = event_id, manager, "ACCOUNT_MANAGER"
        s.reason = staff_pb2.StaffNotified.WARNING_LEVEL_1
        s.subject_id, s.customer_id = wid, cid
        due = at + dt.timedelta(hours=self.rules.task_due_hours[level])
        s.params.update(
            {
                "code": code,
                "level": str(level),
                "category": self.rules.category_of(code),
                "period": period,
                "due_at": due.isoformat(),
            }
        )
        ctx.emit(topics.STAFF_NOTIFICATIONS, manager, n)


def _profile(st: State) -> dict[str, Any]:
    return dict(st.get("crm", {}).get("profile") or {})


def _digest(doc: dict[str, Any]) -> str:
    """A short fingerprint of a view document (the state keeps the last one written)."""
    raw = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def _open_complaints(st: State) -> list[dict[str, str]]:
    """The customer's open complaints as the `lookup` view carries them, by id."""
    return [
        {"id": k, "status": v[0], "sla_state": v[1]}
        for k, v in sorted((st.get("cq") or {}).items())
    ]


@functools.lru_cache(maxsize=256)
def _next_boundary(after_s: int, zone: ZoneInfo, *, monthly: bool) -> int:
    """The first local midnight (the first of a month, if `monthly`) after `after_s`.
    Remembered: a close asks it with the same time for every customer it fires for."""
    day = dt.datetime.fromtimestamp(after_s, zone).date() + dt.timedelta(days=1)
    if monthly and day.day != 1:
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return int(midnight(day, zone).timestamp())


def _tier(st: State, now_ms: int) -> str:
    """The tier in force at the partition's time `now_ms`, not a decision's that takes effect
    later (an annual result is valid from 1 February, and published before it): the VIP
    line and the worklists go by the tier in force. A partition with no time yet (0): the
    latest decision's."""
    tiers = st.get("tier", {})
    return streams.tier_at(tiers, now_ms) if now_ms else streams.latest_tier(tiers)


def _part_of(processor: Any) -> str:
    return PARTS[processor.topic]
