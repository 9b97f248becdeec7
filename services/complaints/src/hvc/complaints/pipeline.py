"""The complaints service on hvc.common.streams (issue 19): one pipeline over its co-partitioned
inputs, each customer's complaints (their changes, milestones emitted, commands decided) and
tier decisions in one state, next to the partition that feeds it; no store round trip per
event.

- care.complaints.v1: a filing. Its tier is the one in force at `filed_at` by the decisions
  known when the filing was published (hvc.complaints.frontier): a filing tiering has not
  decided up to yet waits in the partition's state (`parked`), in order, and is filed once the
  frontier releases it (`before`, on every record of the partition, the clock's ticks too);
- hvc.tier-decisions.v1: the customer's tier timeline; an open complaint takes a later
  decision's targets if they are stricter (a tier change);
- hvc.complaints-commands.v1: what the HTTP side asked (a transition, a work order done),
  decided here against the complaint as it is, once per command id: the outcome (applied, or
  refused with its reason) goes to the `outcomes` view, which the HTTP side waits for.

Each change is a ComplaintUpdated (event id "<complaint> <seq>"), the complaint's view, and the
timer of its next SLA milestone (at risk, breached, each escalation), which emits it once
(event id "<complaint>:<clock>:<percent>"). Timers follow the partition's time: the wall clock's
ticks (`clock = wall`), or the latest event time seen (`event`: a replayed or simulated feed),
which this service's ticks carry to every partition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from hvc.common import monthly, topics, tracing
from hvc.common.clock import EventClock
from hvc.common.codec import InvalidEvent, instant
from hvc.common.streams import Context, Record, State
from hvc.complaints.desk import change_id, json_view, view
from hvc.complaints.domain.lifecycle import (
    STOPPED,
    Complaint,
    InvalidTransition,
    Milestone,
    check_transition,
    fold,
)
from hvc.complaints.domain.policy import SlaPolicy, policy_at
from hvc.complaints.domain.roster import Roster, escalation_level
from hvc.complaints.repository import Tier, later, tier_at
from hvc.events.v1 import care_pb2, common_pb2, complaints_pb2, staff_pb2

FILINGS, TIERS, COMMANDS = "care.complaints.v1", "hvc.tier-decisions.v1", topics.COMPLAINTS_COMMANDS
INPUTS = [FILINGS, TIERS, COMMANDS]
OUTPUT = "hvc.complaints.v1"
VIEW, OUTCOMES = "complaints", "outcomes"
# Per customer, its complaints whose clocks run (not resolved or closed): the VIP line's
# "is a complaint open" is one read by `_id` (hvc.complaints.api, GET .../open-complaints).
OPEN = "open_complaints"
MONTHLY_VIEW = "complaints_monthly"
SLA = "sla"
PARKED = "parked"  # the partition's filings waiting for tiering, in order
KEEP_TIERS = 24  # decisions kept per customer (a handful a year)
KEEP_COMMANDS = 64  # command ids kept per complaint against a redelivery
Status = complaints_pb2.ComplaintUpdated.Status


class Gate(Protocol):
    """When a filing may be filed (hvc.complaints.frontier.TieringFrontier)."""

    def released(self, partition: int, published_ms: int) -> bool: ...
    def decided(self, partition: int, offset: int) -> None: ...


class Open:
    """No wait: a views rebuild (tiering long past what it replays), or the wait turned off."""

    def released(self, partition: int, published_ms: int) -> bool:
        return True

    def decided(self, partition: int, offset: int) -> None:
        pass


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class ComplaintsHandler:
    timer_step_ms = 1  # milestones fire once the partition's time reaches them
    last_views = (OUTCOMES,)  # an outcome read means its complaint's view is written

    def __init__(
        self,
        policies: Sequence[SlaPolicy],
        gate: Gate | None = None,
        clock: EventClock | None = None,
        roster: Roster | None = None,
    ) -> None:
        self.policies = list(policies)
        # Who each escalation reaches (hvc.staff-notifications.v1); None: nobody is notified.
        self.roster = roster
        self.gate = gate or Open()
        # The HTTP side's clock in event-time mode: the latest filing time this process saw.
        self.clock = clock or EventClock()

    def rebuilding(self) -> None:
        """A views rebuild replays filings tiering is long past: they wait for nothing (the
        decisions published before them come first, in the engine's time order)."""
        self.gate = Open()

    # -- the pipeline's handler --------------------------------------------------------------

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        if topic != FILINGS:
            # A decision's occurred_at is when tiering decided, a command's when the HTTP side
            # took it: not the feed's time, they move no clock.
            return 0
        if not message.HasField("occurred_at"):
            raise InvalidEvent("occurred_at is required")
        self.clock.saw(instant(message.occurred_at))
        return int(message.occurred_at.ToMilliseconds())

    def before(self, ctx: Context) -> None:
        """File the parked filings the frontier releases now, in the order they came."""
        parked = ctx.kv.get(PARKED)
        if not parked:
            return
        n = 0
        for filing in parked:
            if not self.gate.released(ctx.partition, filing["known_ms"]):
                break
            self._file(ctx, filing)
            n += 1
        if n:
            ctx.kv.set(PARKED, parked[n:])

    def handle(self, ctx: Context, topic: str, message: Any) -> None:
        if not message.customer_id:
            raise InvalidEvent("customer_id is required")
        if topic == FILINGS:
            if message.WhichOneof("payload") == "complaint_filed":
                self._filed(ctx, message)
        elif topic == TIERS:
            self._decided(ctx, message)
        else:
            self._command(ctx, message)

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        if what != SLA:
            return
        kid, due = str(arg[0]), int(arg[1])
        entry = ctx.state(key).get("c", {}).get(kid)
        if entry is None or entry.get("next") != due:
            return  # a later change moved the complaint's next milestone
        entry.pop("next")
        c = self._fold(entry)
        now = _dt(ctx.now_ms)
        claimed = entry.setdefault("ms", [])
        for m in c.reached(now):
            if m.key in claimed:
                continue
            state, level = c.sla(m.at)  # as of the milestone (the worst of its clocks)
            at = _dt(_ms(m.at))
            target = c.due_at(m.clock, at)
            self._emit(ctx, f"{kid}:{m.key}", c, c.status, state, level, target, at)
            self._notify(ctx, kid, c, entry, m, at, target)
            claimed.append(m.key)
        ctx.view(VIEW, kid, view(c, now, sorted(claimed)))
        state_now = c.sla(now)[0]
        self._open(ctx, key, kid, c, state_now)
        self._count(ctx, entry, c, state_now, None)
        self._schedule(ctx, key, kid, entry, c)

    # -- filings -------------------------------------------------------------------------------

    def _filed(self, ctx: Context, event: care_pb2.ComplaintEvent) -> None:
        f = event.complaint_filed
        filed = f.filed_at if f.HasField("filed_at") else event.occurred_at
        rec = ctx.record
        filing = {
            "kid": f.complaint_id or event.event_id,
            "cid": event.customer_id,
            "channel": care_pb2.ComplaintFiled.Channel.Name(f.channel),
            "category": f.category or "general",
            "text": f.text,
            "filed_ms": int(filed.ToMilliseconds()),
            "known_ms": rec.timestamp_ms,  # when it was published
            "cause": [rec.topic, rec.partition, rec.offset, rec.timestamp_ms],
        }
        parked = ctx.kv.get(PARKED) or []
        if parked or not self.gate.released(ctx.partition, rec.timestamp_ms):
            ctx.kv.set(PARKED, [*parked, filing])  # behind the ones parked before it
            return
        self._file(ctx, filing)

    def _file(self, ctx: Context, f: dict[str, Any]) -> None:
        """File once: a redelivered filing finds the complaint there and changes nothing."""
        cid, kid = str(f["cid"]), str(f["kid"])
        st = ctx.state(cid)
        complaints = st.setdefault("c", {})
        if kid in complaints:
            return
        cause = tracing.Cause(*f["cause"])
        tiers = _tiers(st)
        filed_at = _dt(int(f["filed_ms"]))
        tier = tier_at(tiers, filed_at, int(f["known_ms"]))
        policy = policy_at(self.policies, filed_at.astimezone(self.policies[0].zone).date())
        doc = {
            "kind": "FILED",
            "seq": 0,
            "at": int(f["filed_ms"]),
            "complaint_id": kid,
            "customer_id": cid,
            "channel": f["channel"],
            "category": policy.category(str(f["category"])),
            "category_raw": f["category"],
            "text": f["text"],
            "tier": tier,
            "known_ms": int(f["known_ms"]),
            "policy_version": policy.version,
            "targets": policy.targets_for(tier, f["channel"]).model_dump(),
        }
        entry: dict[str, Any] = {"ch": [], "ms": [], "cmd": []}
        complaints[kid] = entry
        self._record(ctx, cid, kid, entry, doc, cause)
        # Decisions that come after the filing (take effect after it, or were caused after it
        # was published) and were here before it: the same stricter targets as if they had
        # come after it (one outcome, whatever the order of the two topics).
        for t in later(tiers, filed_at, int(f["known_ms"])):
            self._tighten(ctx, cid, kid, entry, t, tiers, cause)

    # -- tier decisions ------------------------------------------------------------------------

    def _decided(self, ctx: Context, event: Any) -> None:
        self.gate.decided(ctx.partition, ctx.record.offset)
        cid = str(event.customer_id)
        st = ctx.state(cid)
        # Known when its cause was published (tiering names it); a decision naming none (a
        # run of its own) when it was itself published.
        cause = tracing.parse(ctx.record.headers)
        known_ms = cause[1] if cause is not None else ctx.record.timestamp_ms
        eff = int(event.effective_from.ToMilliseconds())
        stored = st.setdefault("t", [])
        if not any(t[1] == eff for t in stored):  # as first received: a redelivery keeps it
            stored.append([common_pb2.Tier.Name(event.new_tier), eff, known_ms])
            stored.sort(key=lambda t: t[1])
            del stored[:-KEEP_TIERS]
        tiers = _tiers(st)
        mine = [t for t in tiers if _ms(t.effective_from) == eff]
        for kid, entry in st.get("c", {}).items():
            for t in mine:
                self._tighten(ctx, cid, kid, entry, t, tiers, None)

    def _tighten(
        self,
        ctx: Context,
        cid: str,
        kid: str,
        entry: State,
        t: Tier,
        tiers: list[Tier],
        cause: tracing.Cause | None,
    ) -> None:
        """The complaint under decision `t`'s targets if they are stricter (`tiers`: the
        customer's decisions, `t` among them)."""
        c = self._fold(entry)
        if c.status in STOPPED or c.tier == t.tier:
            return
        known_by = max(t.known_ms, int(entry["ch"][0].get("known_ms") or 0))
        if t.effective_from <= c.filed_at and tier_at(tiers, c.filed_at, known_by) != t.tier:
            # In force before the filing and superseded by then, among the decisions known
            # when the filing or this decision was (a redelivered or late older decision): the
            # complaint never had that tier.
            return
        new = c.policy.targets_for(t.tier, c.channel)
        if c.targets.stricter(new) == c.targets:
            return  # not stricter: the pinned targets stay
        doc = {
            "kind": "TIER_CHANGED",
            "seq": c.seq + 1,
            "at": max(_ms(t.effective_from), _ms(c.updated_at or c.filed_at)),
            "tier": t.tier,
            "targets": new.model_dump(),
        }
        self._record(ctx, cid, kid, entry, doc, cause)

    # -- commands of the HTTP side -------------------------------------------------------------

    def _command(self, ctx: Context, cmd: complaints_pb2.ComplaintCommand) -> None:
        cid, kid, cmd_id = str(cmd.customer_id), str(cmd.complaint_id), str(cmd.event_id)
        if not cmd_id or not kid:
            raise InvalidEvent("event_id and complaint_id are required")
        entry = ctx.state(cid).get("c", {}).get(kid)
        if entry is None:
            self._outcome(ctx, cmd_id, kid, cid, 404, f"no complaint {kid}", None)
            return
        if cmd_id in entry["cmd"]:
            return  # decided before: its outcome stands
        entry["cmd"] = [*entry["cmd"], cmd_id][-KEEP_COMMANDS:]
        c = self._fold(entry)
        at = max(int(cmd.occurred_at.ToMilliseconds()), _ms(c.updated_at or c.filed_at))
        try:
            doc = self._change(cmd, c, at)
        except InvalidTransition as exc:
            self._outcome(ctx, cmd_id, kid, cid, 409, str(exc), view(c, _dt(ctx.now_ms)))
            return
        except LookupError as exc:
            self._outcome(ctx, cmd_id, kid, cid, 404, str(exc), view(c, _dt(ctx.now_ms)))
            return
        if doc is not None:
            c = self._record(ctx, cid, kid, entry, doc, None)
        self._outcome(ctx, cmd_id, kid, cid, 200, "", view(c, _dt(ctx.now_ms), entry["ms"]))

    @staticmethod
    def _change(
        cmd: complaints_pb2.ComplaintCommand, c: Complaint, at: int
    ) -> dict[str, Any] | None:
        """The change a command makes (None: none, a work order done already); raises
        InvalidTransition, or LookupError for a work order the complaint does not have."""
        seq = c.seq + 1
        if cmd.WhichOneof("payload") == "transition_requested":
            t = cmd.transition_requested
            to = Status.Name(t.to)
            check_transition(c.status, to)
            if to == "CALLBACK_DONE" and not t.satisfaction:
                raise InvalidTransition("a callback records the satisfaction (1-5)")
            if to == "DISPATCHED" and not t.department:
                raise InvalidTransition("dispatching names the department of the work order")
            doc: dict[str, Any] = {
                "kind": "TRANSITION",
                "seq": seq,
                "at": at,
                "to": to,
                "by": t.by,
                "note": t.note,
                "transition_id": cmd.event_id,
                "satisfaction": t.satisfaction or None,
            }
            if to == "DISPATCHED":
                doc |= {"department": t.department, "work_order_id": f"{c.complaint_id}-WO{seq}"}
            return doc
        if cmd.WhichOneof("payload") == "work_order_completed":
            w = cmd.work_order_completed
            wo = c.work_orders.get(w.work_order_id)
            if wo is None:
                raise LookupError(f"no work order {w.work_order_id}")
            if wo["completed_at"] is not None:
                return None  # done already
            return {
                "kind": "WORK_ORDER_DONE",
                "seq": seq,
                "at": at,
                "work_order_id": w.work_order_id,
                "by": w.by,
                "result": w.result,
            }
        raise InvalidEvent("a command names what it asks")

    @staticmethod
    def _outcome(
        ctx: Context,
        cmd_id: str,
        kid: str,
        cid: str,
        status: int,
        reason: str,
        complaint: dict[str, Any] | None,
    ) -> None:
        doc = {
            "complaint_id": kid,
            "customer_id": cid,
            "status": status,
            "reason": reason,
            "view": json_view(complaint) if complaint is not None else None,
        }
        ctx.view(OUTCOMES, cmd_id, doc, mode="insert")  # the first decision of an id stands

    # -- changes, outputs and timers ---------------------------------------------------------

    def _fold(self, entry: State) -> Complaint:
        return fold(({**ch, "at": _dt(int(ch["at"]))} for ch in entry["ch"]), self.policies)

    def _record(
        self,
        ctx: Context,
        cid: str,
        kid: str,
        entry: State,
        doc: dict[str, Any],
        cause: tracing.Cause | None,
    ) -> Complaint:
        entry["ch"].append(doc)
        c = self._fold(entry)
        at = _dt(int(doc["at"]))
        state, level = c.sla(at)
        due = c.due_at("first_response", at) or c.due_at("resolution", at)
        self._emit(ctx, change_id(kid, int(doc["seq"])), c, c.status, state, level, due, at, cause)
        fresh = len(entry["ch"]) == 1  # the filing: its view document is new
        ctx.view(
            VIEW,
            kid,
            view(c, _dt(ctx.now_ms), sorted(entry["ms"])),
            "fresh" if fresh else "replace",
        )
        self._open(ctx, cid, kid, c, state)
        self._count(ctx, entry, c, state, doc)
        self._schedule(ctx, cid, kid, entry, c)
        return c

    def _count(
        self, ctx: Context, entry: State, c: Complaint, sla_state: str, doc: dict[str, Any] | None
    ) -> None:
        """The monthly counts (hvc.common.monthly): a filing in its month by tier, channel and
        category; its first breach in the month it was filed (compliance of a month's filings);
        a callback's satisfaction in the month of the callback."""
        filed = monthly.month_of(c.filed_at, c.policy.zone)
        dims = (f"tier:{c.tier}", f"channel:{c.channel}", f"category:{c.category}")
        if doc is not None and doc["kind"] == "FILED":
            monthly.add(ctx, MONTHLY_VIEW, filed, {"filed": 1, **{f"filed|{d}": 1 for d in dims}})
        if sla_state == "BREACHED" and not entry.get("br"):
            entry["br"] = True
            counts = {"breached": 1, **{f"breached|{d}": 1 for d in dims}}
            monthly.add(ctx, MONTHLY_VIEW, filed, counts)
        if doc is not None and doc.get("to") == "CALLBACK_DONE" and doc.get("satisfaction"):
            month = monthly.month_of(_dt(int(doc["at"])), c.policy.zone)
            score = int(doc["satisfaction"])
            monthly.add(ctx, MONTHLY_VIEW, month, {f"satisfaction:{score}": 1})

    def _open(self, ctx: Context, cid: str, kid: str, c: Complaint, sla_state: str) -> None:
        """The customer's `open_complaints` document, written when its summary changed."""
        st = ctx.state(cid)
        summary: dict[str, list[str]] = dict(st.get("open") or {})
        if c.status in STOPPED:
            summary.pop(kid, None)
        else:
            summary[kid] = [c.status, sla_state]
        if summary == st.get("open", {}):
            return
        st["open"] = summary
        items = [{"id": k, "status": v[0], "sla_state": v[1]} for k, v in sorted(summary.items())]
        ctx.view(OPEN, cid, {"customer_id": cid, "open": items})

    def _schedule(self, ctx: Context, cid: str, kid: str, entry: State, c: Complaint) -> None:
        """A timer at the complaint's next milestone not emitted yet; one pending at a time
        (`next`): a timer that is no longer the next does nothing when it fires."""
        if c.status == "CLOSED":
            entry.pop("next", None)
            return
        claimed = entry.get("ms", [])
        pending = [m.at for m in c.milestones(_dt(ctx.now_ms)) if m.key not in claimed]
        if not pending:
            entry.pop("next", None)
            return
        due = _ms(min(pending))
        if entry.get("next") != due:
            entry["next"] = due
            ctx.schedule(due, cid, SLA, [kid, due])

    def _notify(
        self,
        ctx: Context,
        kid: str,
        c: Complaint,
        entry: State,
        m: Milestone,
        at: dt.datetime,
        due: dt.datetime | None,
    ) -> None:
        """The milestone's StaffNotified, once (its id the milestone's): at risk to the chain's
        first level, a breach and each further step to the level it reaches (DOMAIN §6)."""
        if self.roster is None:
            return
        p = c.policy
        level = escalation_level(
            m.percent, p.at_risk_percent, p.escalation_step_percent, len(p.escalation_levels)
        )
        role = p.escalation_levels[level]
        agent = department = None
        for ch in entry["ch"]:  # the last agent who acted, the last department dispatched to
            agent = ch.get("by") or agent
            department = ch.get("department") or department
        staff = self.roster.person(role, c.channel, agent=agent, department=department)
        if staff is None:
            return
        Reason = staff_pb2.StaffNotified.Reason
        event_id = f"sn:{kid}:{m.key}"
        n = staff_pb2.StaffNotificationEvent(event_id=event_id, customer_id=c.customer_id)
        n.occurred_at.FromDatetime(at)
        s = n.staff_notified
        s.notification_id, s.staff_id, s.role = event_id, staff, role
        s.reason = Reason.COMPLAINT_AT_RISK if m.percent < 100 else Reason.COMPLAINT_BREACHED
        s.subject_id, s.customer_id = kid, c.customer_id
        s.params.update(
            {
                "clock": m.clock,
                "percent": str(m.percent),
                "tier": c.tier,
                "channel": c.channel,
                "category": c.category,
                "status": c.status,
                "due_at": due.isoformat() if due else "",
            }
        )
        ctx.emit(topics.STAFF_NOTIFICATIONS, staff, n)

    @staticmethod
    def _emit(
        ctx: Context,
        event_id: str,
        c: Complaint,
        status: str,
        sla_state: str,
        level: int,
        due: dt.datetime | None,
        at: dt.datetime,
        cause: tracing.Cause | None = None,
    ) -> None:
        m = complaints_pb2.ComplaintUpdated(
            event_id=event_id,
            customer_id=c.customer_id,
            complaint_id=c.complaint_id,
            status=Status.Value(status),
            sla_state=complaints_pb2.ComplaintUpdated.SlaState.Value(sla_state),
            escalation_level=level,
        )
        m.occurred_at.FromDatetime(at)
        if due is not None:
            m.due_at.FromDatetime(due)
        ctx.emit(OUTPUT, c.customer_id, m, cause=cause)


def _tiers(st: State) -> list[Tier]:
    return [Tier(str(t[0]), _dt(int(t[1])), int(t[2])) for t in st.get("t", [])]
