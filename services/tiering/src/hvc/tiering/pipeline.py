"""The tiering service on hvc.common.streams (issue 19): one pipeline over crm.customers.v1,
billing.accounts.v1 and its own hvc.tiering-commands.v1, each customer's facts (profiles,
plans, bills, payments, overrides, annual results, the snapshots of its groups) and the
decisions already published in one state beside its partition. No store round trip per event:
what the HTTP side and the annual run read is written as views, in batches.

- A fact that bears on tiers (a profile, a plan, a group's snapshot, an override, an annual
  result) decides again: the timeline of the customer's facts (hvc.tiering.domain.timeline),
  and the decisions it owes against those published (`emitted`), each published on
  hvc.tier-decisions.v1 and written to the `tier_history` view, once: its event id names the
  customer, the instant, the sequence and the tier, so a replay publishes the same ids.
- Bills and payments are facts of the annual evaluation only: kept, written to the
  `customers` view, no decision.
- Groups are keyed by group_id (GroupUpserted lands on the group's partition), their key
  people by customer: a group's own state (key `group|<id>`: its snapshots and members) lives
  on the group's partition; a profile naming a group sends MemberJoined there (keyed by the
  group), and the group shares its snapshots with each member (GroupShared, keyed by the
  member). Both through hvc.tiering-commands.v1: a repartition, never a process-local mirror.
- Overrides (the HTTP side) and annual results (the annual run) are stored by their writers
  (override_log, annual_results) and sent as commands; the pipeline decides.

A decision's `decided_at` is the timestamp of the record that caused it, so the same record
decides the same document however often it is handled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from hvc.common import monthly, tracing
from hvc.common.codec import InvalidEvent, instant
from hvc.common.streams import Context, Record, State, ViewMode
from hvc.common.topics import GROUP_FILES, TIERING_COMMANDS
from hvc.events.v1 import common_pb2, tiering_pb2
from hvc.tiering.decisions import TOPIC, history_doc, to_message
from hvc.tiering.domain.groups import group_file
from hvc.tiering.domain.model import (
    AnnualResult,
    Bill,
    CustomerFacts,
    GroupSnapshot,
    Override,
    PlanVersion,
    Profile,
)
from hvc.tiering.domain.rules import RuleBook
from hvc.tiering.domain.tiers import Tier
from hvc.tiering.domain.timeline import Emitted, decisions_owed, timeline
from hvc.tiering.repository import (
    BILL,
    LEDGER,
    annual_doc,
    bill_doc,
    customer_doc,
    facts_doc,
    field_key,
    from_docs,
    group_from_doc,
    ledger_bill,
    ledger_id,
    ledger_payment,
)

CUSTOMERS, ACCOUNTS = "crm.customers.v1", "billing.accounts.v1"
INPUTS = [CUSTOMERS, ACCOUNTS, TIERING_COMMANDS]
GROUP = "group|"  # the state key of a group's own state, on the group's partition
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
KEEP_BILL_YEARS = 3  # bills of the current year and the ones before, for the annual run
CUSTOMERS_VIEW, HISTORY_VIEW, GROUPS_VIEW = "customers", "tier_history", "groups"
MEMBERS_VIEW = "group_members"  # a group's members, one document each: `<group>|<customer>`
KEEP_STINTS = 8  # a member's past stints in a group kept (leaving and coming back)
KEEP_KEY_PERSONS = 200  # key persons named in a group's file document (all are counted)
MONTHLY_VIEW = "tiers_monthly"  # decisions per month of their effect (hvc.common.monthly)


def _date(d: common_pb2.Date) -> dt.date | None:
    return dt.date(d.year, d.month, d.day) if d.year else None


# -- the state: the store documents' shapes, instants tagged for JSON -----------------------


def encode(v: Any) -> Any:
    """A store document as the engine's state keeps it (JSON): instants as {"$t": iso}."""
    if isinstance(v, dt.datetime):
        return {"$t": v.astimezone(dt.UTC).isoformat()}
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [encode(x) for x in v]
    return v


def decode(v: Any) -> Any:
    if isinstance(v, dict):
        if len(v) == 1 and "$t" in v:
            return dt.datetime.fromisoformat(v["$t"])
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


class TieringHandler:
    def __init__(self, book: RuleBook) -> None:
        self.book = book

    # -- the pipeline's handler --------------------------------------------------------------

    def event_time_ms(self, topic: str, message: Any, record: Record) -> int:
        # Tiering has no timers: a timeline's future change points are decided (and published)
        # as soon as the facts make them known.
        return 0

    def handle(self, ctx: Context, topic: str, message: Any) -> None:
        if topic == CUSTOMERS:
            self._customer_event(ctx, message)
        elif topic == ACCOUNTS:
            self._account_event(ctx, message)
        else:
            self._command(ctx, message)

    def fire(self, ctx: Context, key: str, what: str, arg: Any) -> None:
        raise AssertionError(f"tiering sets no timers ({what})")

    # -- inputs --------------------------------------------------------------------------------

    def _customer_event(self, ctx: Context, event: Any) -> None:
        kind = event.WhichOneof("payload")
        at = instant(event.occurred_at)
        if kind == "group_upserted":
            self._group_upserted(ctx, event, at)
            return
        cid = event.customer_id
        if kind == "customer_upserted":
            u = event.customer_upserted
            group = u.group_id if u.HasField("group_id") and u.group_id else None
            p = Profile(
                event.event_id,
                at,
                _date(u.joined_on) if u.HasField("joined_on") else None,
                group,
                u.is_key_person,
            )
            st = ctx.state(cid)
            facts = self._facts(cid, st)
            if any(x.event_id == p.event_id for x in facts.profiles):
                return  # redelivered
            latest = max(facts.profiles, key=lambda x: (x.at, x.event_id), default=None)
            facts.profiles.append(p)
            if latest is None or (p.at, p.event_id) > (latest.at, latest.event_id):
                manager = u.manager_id if u.HasField("manager_id") and u.manager_id else None
                self._membership(ctx, cid, st, p, manager)
            self._changed(ctx, cid, st, facts)
        elif kind == "plan_changed":
            pc = event.plan_changed
            if not pc.HasField("effective_from"):
                raise InvalidEvent("PlanChanged.effective_from is required")
            start = instant(pc.effective_from)
            end = instant(pc.effective_to) if pc.HasField("effective_to") else None
            if end is not None and end < start:
                raise InvalidEvent("PlanChanged.effective_to is before effective_from")
            plan = PlanVersion(
                event.event_id, pc.plan_id, pc.monthly_fee_fen, pc.gotone, start, end, at
            )
            st = ctx.state(cid)
            facts = self._facts(cid, st)
            if any(x.event_id == plan.event_id for x in facts.plans):
                return
            facts.plans.append(plan)
            self._changed(ctx, cid, st, facts)
        # contract_signed and port_out_requested do not bear on tiers.

    def _account_event(self, ctx: Context, event: Any) -> None:
        kind = event.WhichOneof("payload")
        at = instant(event.occurred_at)
        cid = event.customer_id
        if kind == "bill_issued":
            b = event.bill_issued
            if not b.bill_id:
                raise InvalidEvent("BillIssued.bill_id is required")
            if not PERIOD.fullmatch(b.period):
                raise InvalidEvent(f"BillIssued.period {b.period!r} is not YYYY-MM")
            if b.countable_fen > b.amount_fen:
                raise InvalidEvent("BillIssued.countable_fen exceeds amount_fen")
            # The hot path (most records are bills): the state's document is changed in
            # place, with no CustomerFacts built; bills never move a tier by themselves, they
            # feed the annual run and the reports.
            st = ctx.state(cid)
            bills: dict[str, Any] = st.setdefault("facts", {}).setdefault("bills", {})
            key = field_key(b.bill_id)
            old = bills.get(key)
            if old is not None and decode(old["at"]) >= at:
                return  # redelivered, or an older issue of a re-issued bill
            bill = Bill(b.bill_id, b.period, b.amount_fen, b.countable_fen, at)
            bills[key] = encode(bill_doc(bill))
            # the bill's own document in the `ledger` view (a re-issue replaces it)
            ctx.view(
                LEDGER, *_id_doc(ledger_bill(cid, bill)), "insert" if old is None else "replace"
            )
            newest = max(int(x["period"][:4]) for x in bills.values())
            for k in [
                k for k, x in bills.items() if int(x["period"][:4]) <= newest - KEEP_BILL_YEARS
            ]:
                del bills[k]
                ctx.view(LEDGER, ledger_id(cid, BILL, k), None)
            self._viewed(ctx, cid, st)
        elif kind == "payment_received":
            st = ctx.state(cid)
            payments: dict[str, Any] = st.setdefault("facts", {}).setdefault("payments", {})
            key = field_key(event.event_id)
            if key in payments:
                return
            amount = event.payment_received.amount_fen
            payments[key] = encode({"at": at, "amount_fen": amount})
            ctx.view(LEDGER, *_id_doc(ledger_payment(cid, key, at, amount)), "insert")
            self._viewed(ctx, cid, st)
        # Suspensions and resumptions do not bear on tiers.

    def _group_upserted(self, ctx: Context, event: Any, at: dt.datetime) -> None:
        g = event.group_upserted
        if not g.group_id:
            raise InvalidEvent("GroupUpserted.group_id is required")
        gst = ctx.state(GROUP + g.group_id)
        snapshots: dict[str, Any] = gst.setdefault("snapshots", {})
        key = field_key(event.event_id)
        if key in snapshots:
            return  # redelivered
        snapshots[key] = _snapshot(event.event_id, at, g)
        self._write_file(ctx, g.group_id, gst)
        for member in _members(gst):
            self._share(ctx, g.group_id, gst, member)

    def _command(self, ctx: Context, c: Any) -> None:
        kind = c.WhichOneof("payload")
        cid = c.customer_id
        if kind == "member_joined":
            self._member_joined(ctx, cid, c.member_joined)
            return
        if kind == "member_left":
            self._member_left(ctx, cid, c.member_left)
            return
        st = ctx.state(cid)
        facts = self._facts(cid, st)
        if kind == "group_shared":
            gs = c.group_shared
            shared = {
                field_key(s.source_event_id): _snapshot(s.source_event_id, instant(s.at), s)
                for s in gs.snapshots
            }
            groups: dict[str, Any] = st.setdefault("groups", {})
            if groups.get(gs.group_id) == shared:
                return
            groups[gs.group_id] = shared
        elif kind == "override_set":
            o = c.override_set
            if any(x.override_id == o.override_id for x in facts.overrides):
                return
            facts.overrides.append(
                Override(
                    o.override_id,
                    Tier[common_pb2.Tier.Name(o.tier)],
                    instant(o.set_at),
                    instant(o.expires_at),
                    o.reason,
                    o.set_by,
                )
            )
        elif kind == "annual_assessed":
            a = c.annual_assessed
            result = AnnualResult(
                a.year,
                dt.date(a.as_of.year, a.as_of.month, a.as_of.day),
                a.ruleset_version,
                a.consumption_points,
                a.tenure_points,
                a.tenure_years,
                a.score,
                Tier[common_pb2.Tier.Name(a.tier)],
                instant(a.valid_from),
            )
            if facts.annual.get(str(a.year)) == result:
                return
            facts.annual[str(a.year)] = result
            at = dt.datetime.fromtimestamp(ctx.record.timestamp_ms / 1000, dt.UTC)
            st.setdefault("annual", {})[str(a.year)] = encode(annual_doc(cid, result, at))
        self._changed(ctx, cid, st, facts)

    # -- groups --------------------------------------------------------------------------------

    def _membership(
        self, ctx: Context, cid: str, st: State, p: Profile, manager: str | None
    ) -> None:
        """The customer's latest profile: tell the group it names (joined, or its key-person
        flag or manager changed) and the groups it no longer names (left), on their
        partitions. `member`: what the groups were last told."""
        was: dict[str, Any] = st.get("member") or {
            # before the groups' files: the groups joined, as the state kept them
            g: {"key": None, "mgr": None}
            for g in st.get("joined", [])
        }
        now: dict[str, dict[str, Any]] = (
            {p.group_id: {"key": p.is_key_person, "mgr": manager}} if p.group_id else {}
        )
        at_ms = int(p.at.timestamp() * 1000)
        for gid in sorted(set(was) - set(now)):
            left = tiering_pb2.MemberLeft(group_id=gid)
            left.at.FromMilliseconds(at_ms)
            self._send(ctx, gid, cid, f"leave|{gid}|{cid}|{p.event_id}", member_left=left)
        for gid, m in now.items():
            if was.get(gid) == m:
                continue
            joined = tiering_pb2.MemberJoined(group_id=gid, is_key_person=bool(m["key"]))
            if m["mgr"]:
                joined.manager_id = str(m["mgr"])
            joined.at.FromMilliseconds(at_ms)
            self._send(ctx, gid, cid, f"join|{gid}|{cid}|{p.event_id}", member_joined=joined)
        st["member"] = now
        st.pop("joined", None)

    def _member_joined(self, ctx: Context, cid: str, m: Any) -> None:
        gid = m.group_id
        gst = ctx.state(GROUP + gid)
        members = _members(gst)
        at_ms = m.at.ToMilliseconds() if m.HasField("at") else None
        entry = members.get(cid)
        new = entry is None
        if new:
            entry = members[cid] = {"since": at_ms}  # its past stints stay in `left`
        assert entry is not None
        entry["key"] = m.is_key_person
        entry["mgr"] = m.manager_id if m.HasField("manager_id") else None
        self._write_member(ctx, gid, cid, gst)
        self._write_file(ctx, gid, gst)
        if new and gst.get("snapshots"):
            self._share(ctx, gid, gst, cid)

    def _member_left(self, ctx: Context, cid: str, m: Any) -> None:
        gid = m.group_id
        gst = ctx.state(GROUP + gid)
        members = _members(gst)
        entry = members.pop(cid, None)
        if entry is None:
            return  # redelivered, or never joined here
        stints = gst.setdefault("left", {}).setdefault(cid, [])
        stint = [entry.get("since"), m.at.ToMilliseconds()]
        if stint not in stints:
            stints.append(stint)
            del stints[:-KEEP_STINTS]
        self._write_member(ctx, gid, cid, gst)
        self._write_file(ctx, gid, gst)

    @staticmethod
    def _write_member(ctx: Context, gid: str, cid: str, gst: State) -> None:
        """The member's document of the `group_members` view: its stints in the group (for
        the group's stability; `to` None while it lasts, `from` None if not known) and, while
        a member, its key-person flag and manager."""
        entry = _members(gst).get(cid)
        stints = [list(x) for x in gst.get("left", {}).get(cid, [])]
        if entry is not None:
            stints.append([entry.get("since"), None])
        doc = {
            "group_id": gid,
            "customer_id": cid,
            "member": entry is not None,
            "key_person": bool(entry and entry.get("key")),
            "manager_id": entry.get("mgr") if entry else None,
            "stints": [{"from": _at(a), "to": _at(b)} for a, b in stints],
        }
        ctx.view(MEMBERS_VIEW, f"{gid}|{cid}", doc)

    def _write_file(self, ctx: Context, gid: str, gst: State) -> None:
        """The group's document of the `groups` view: its snapshots and what its members make
        of its file (how many, its key persons, their managers: {id, members} documents, as
        ids are no field names and the local store takes no arrays of arrays); and the file,
        when it changed, on hvc.group-files.v1."""
        members = _members(gst)
        managers: dict[str, int] = {}
        key_managers: dict[str, int] = {}
        for m in members.values():
            if m.get("mgr"):
                managers[m["mgr"]] = managers.get(m["mgr"], 0) + 1
                if m.get("key"):
                    key_managers[m["mgr"]] = key_managers.get(m["mgr"], 0) + 1
        key_persons = sorted(c for c, m in members.items() if m.get("key"))
        doc = {
            "snapshots": decode(gst.get("snapshots", {})),
            "members": len(members),
            "key_persons": key_persons[:KEEP_KEY_PERSONS],
            "key_person_count": len(key_persons),
            "managers": [{"id": m, "members": n} for m, n in sorted(managers.items())],
            "key_person_managers": [
                {"id": m, "members": n} for m, n in sorted(key_managers.items())
            ],
        }
        ctx.view(GROUPS_VIEW, gid, doc)
        at = dt.datetime.fromtimestamp(ctx.record.timestamp_ms / 1000, dt.UTC)
        full = {"_id": gid, **doc}
        file = group_file(full, group_from_doc(full), self.book.at(at))
        filed = tiering_pb2.GroupFiled(
            customer_id=gid,
            name=file.name,
            sector=file.sector,
            group_class=file.group_class or "",
            handsets=file.handsets,
            monthly_spend_fen=file.monthly_spend_fen,
            manager_id=file.manager_id or "",
            complete=file.complete,
        )
        digest = hashlib.sha256(filed.SerializeToString(deterministic=True)).hexdigest()[:32]
        if gst.get("filed") == digest:
            return
        gst["filed"] = digest
        filed.event_id = f"gf-{gid}-{digest}"
        filed.occurred_at.FromMilliseconds(ctx.record.timestamp_ms)
        ctx.emit(GROUP_FILES, gid, filed)

    def _share(self, ctx: Context, gid: str, gst: State, member: str) -> None:
        snaps = [decode(s) for s in gst.get("snapshots", {}).values()]
        latest = max((s["event_id"] for s in snaps), default="")
        shared = tiering_pb2.GroupShared(group_id=gid)
        for s in sorted(snaps, key=lambda s: (s["at"], s["event_id"])):
            m = shared.snapshots.add(
                source_event_id=s["event_id"],
                name=s["name"],
                sector=s["sector"],
                handsets=s["handsets"],
                monthly_spend_fen=s["monthly_spend_fen"],
            )
            m.at.FromDatetime(s["at"])
        digest = hashlib.sha256(f"{gid}|{member}|{len(snaps)}|{latest}".encode()).hexdigest()
        self._send(ctx, member, member, f"share-{digest[:32]}", group_shared=shared)

    def _send(self, ctx: Context, key: str, cid: str, event_id: str, **payload: Any) -> None:
        c = tiering_pb2.TieringCommand(event_id=event_id, customer_id=cid, **payload)
        c.occurred_at.FromMilliseconds(ctx.record.timestamp_ms)
        ctx.emit(TIERING_COMMANDS, key, c)

    # -- facts and decisions -------------------------------------------------------------------

    @staticmethod
    def _facts(cid: str, st: State) -> CustomerFacts:
        doc = decode(st.get("facts") or {})
        annual = decode(list(st.get("annual", {}).values()))
        facts, _ = from_docs({"_id": cid, **doc}, annual)
        return facts

    def _keep(self, ctx: Context, cid: str, st: State, facts: CustomerFacts) -> None:
        """Keep the facts in the state, and those but bills and payments in the `customers`
        view (they have the `ledger` view)."""
        st["facts"] = encode({k: v for k, v in facts_doc(facts).items() if k != "_id"})
        mode: ViewMode = "replace" if st.get("viewed") else "fresh"  # fresh: its first
        st["viewed"] = True
        ctx.view(CUSTOMERS_VIEW, cid, customer_doc(facts), mode)

    @staticmethod
    def _viewed(ctx: Context, cid: str, st: State) -> None:
        """A customer known only by its bills or payments so far has a `customers` document
        too (the annual run and the reports go by them), written once."""
        if st.get("viewed"):
            return
        st["viewed"] = True
        facts = {k: v for k, v in st["facts"].items() if k not in ("bills", "payments")}
        ctx.view(CUSTOMERS_VIEW, cid, {"_id": cid, **decode(facts)}, "fresh")

    def _changed(self, ctx: Context, cid: str, st: State, facts: CustomerFacts) -> None:
        """Keep the facts; publish the decisions their timeline owes."""
        self._keep(ctx, cid, st, facts)
        groups = self._groups(st)
        emitted = {k: Emitted(Tier[t], n) for k, (t, n) in st.get("emitted", {}).items()}
        owed = decisions_owed(cid, timeline(facts, groups, self.book), emitted)
        if not owed:
            return
        decided_at = dt.datetime.fromtimestamp(ctx.record.timestamp_ms / 1000, dt.UTC)
        r = ctx.record
        cause = tracing.Cause(r.topic, r.partition, r.offset, r.timestamp_ms)
        for d in owed:
            h = history_doc(d, facts, decided_at, cause)
            ctx.view(HISTORY_VIEW, h["_id"], h, "insert")
            ctx.emit(TOPIC, cid, to_message(h))
            # Month by month (hvc.common.monthly): the moves between tiers, and the flows in
            # and out of each tier whose running sum is the distribution at each month's end.
            old, new, source = h["old_tier"], h["new_tier"], h["source"]
            zone = ZoneInfo(self.book.at(d.point.at).timezone)
            monthly.add(
                ctx,
                MONTHLY_VIEW,
                monthly.month_of(d.point.at, zone),
                {
                    f"move:{old}>{new}": 1,
                    f"in:{new}": 1,
                    f"out:{old}": 1,
                    f"source:{source}": 1,
                },
            )
            st.setdefault("emitted", {})[h["_id"].split(" ")[1]] = [d.point.new_tier.name, d.seq]

    @staticmethod
    def _groups(st: State) -> Mapping[str, list[GroupSnapshot]]:
        return {
            gid: group_from_doc({"_id": gid, "snapshots": decode(snaps)})
            for gid, snaps in st.get("groups", {}).items()
        }


def _members(gst: State) -> dict[str, dict[str, Any]]:
    """A group's members: customer -> since (ms, None if unknown), key person, manager. A
    state kept before the groups' files had a list of customer ids."""
    members = gst.get("members")
    if isinstance(members, list):
        gst["members"] = {c: {"since": None, "key": False, "mgr": None} for c in members}
    return gst.setdefault("members", {})  # type: ignore[no-any-return]


def _at(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _snapshot(event_id: str, at: dt.datetime, g: Any) -> Any:
    """A group's snapshot as the state and the `groups` view keep it (the shape
    `group_from_doc` reads), from a GroupUpserted or a shared GroupSnapshot."""
    return encode(
        {
            "event_id": event_id,
            "at": at,
            "name": g.name,
            "sector": g.sector,
            "handsets": g.handsets,
            "monthly_spend_fen": g.monthly_spend_fen,
        }
    )


def _id_doc(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A view's `_id` and its document."""
    return doc["_id"], {k: v for k, v in doc.items() if k != "_id"}
