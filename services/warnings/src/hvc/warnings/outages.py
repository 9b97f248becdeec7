"""Proactive notices in the warnings pipeline (通告制度, DOMAIN §6; rules in
hvc.warnings.domain.notices).

An outage is keyed by its id, not by customer, and concerns customers of every partition. The
partition that reads it from network.outages.v1 copies it to every partition of
hvc.outages-fanout.v1 (one key per partition, `topics.partition_keys`), an input of the same
pipeline: each partition then looks its own customers up in its own state, where the
customers' home cells and area are indexed as their profiles come (`cell:<id>`, the sorted
ids of the partition's customers there; an area's, spread over `AREA_BUCKETS` lists
`area:<code>:<n>` by a hash of the id). Nothing is mirrored across partitions and nothing is
read from the store.

An area holds a large share of a partition's customers (the simulator's eight areas, an
eighth each; a province's twenty-one cities at millions of customers, tens of thousands per
partition), and each profile handled reads and writes the list it joins: one list per area
made each profile cost the size of its area, and each checkpoint's changelog carry the whole
list. A cell's customers are few (about 25 in the simulator), so a cell keeps one list.
States written before the buckets have an area's ids in one list `area:<code>`: it is still
read, and a customer leaving the area leaves it too.

Each notice is a NotificationRequested (id `notice|<outage>|<customer>|<phase>`, the same on
every replay), a contact history entry (`contacts`, inserted once) and a count in the
outage's report (`outage_notices`, one document per outage and partition, written whole).

The report's `affected` is the partition's customers the outage concerns whose tier in force
at its announcement is in the programme, by every decision, whenever it comes: tiering
publishes at its own pace, so a decision may reach the partition after the outage's copy
(a restarted tiering is seconds behind). Each cell and area keeps the latest outages
announced there with their announcement (`ocell:<id>`, `oarea:<code>`, a few small lists a
decision reads, where the outage's own state holds up to `max_cells` cells); a decision of
a customer one of them concerns moves that outage's count by the change it makes to the
customer's tier at the announcement. (A customer who moved between the announcement and a
late decision is looked up where it is now.)"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zlib
from collections.abc import Iterable
from typing import Any

from hvc.common import topics
from hvc.common.codec import InvalidEvent
from hvc.common.streams import KV, Context, State
from hvc.events.v1 import outages_pb2
from hvc.warnings import messages
from hvc.warnings.domain import notices
from hvc.warnings.domain.notices import ENDED, Outage
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.domain.templates import Templates
from hvc.warnings.streams import tier_at

log = logging.getLogger(__name__)
OUTAGES, FANOUT = topics.OUTAGES, topics.OUTAGES_FANOUT
VIEW = "outage_notices"
NOTICE = "notice"  # the timer of a planned notice
PREFIX = "outage:"  # the partition's state of an outage
KEEP_LATE = 8  # a customer's notices withheld for want of a tier, for a decision that comes late
KEEP_RECENT = 8  # a cell's or an area's latest outages, [id, announced (ms)] each
AREA_BUCKETS = 256  # an area's customers of a partition, in this many lists


def _area_key(area: str, cid: str) -> str:
    return f"area:{area}:{zlib.crc32(cid.encode()) % AREA_BUCKETS}"


def _iso(ms: int | None) -> str:
    return "" if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def _places(cells: Iterable[str], areas: Iterable[str]) -> list[str]:
    """The keys of the lists of latest outages of these cells and areas."""
    return [f"ocell:{c}" for c in cells] + [f"oarea:{a}" for a in areas]


def _add(kv: KV, key: str, cid: str) -> None:
    ids: list[str] = list(kv.get(key) or [])
    if cid not in ids:
        ids.append(cid)
        kv.set(key, sorted(ids))


def _remove(kv: KV, key: str, cid: str) -> None:
    before = kv.get(key) or []
    if cid not in before:
        return
    ids = [i for i in before if i != cid]
    if ids:
        kv.set(key, ids)
    else:
        kv.delete(key)


class OutageNotices:
    def __init__(self, rules: WarningRules, templates: Templates) -> None:
        self.rules, self.templates = rules, templates

    # -- the customers' cells ----------------------------------------------------------------

    @staticmethod
    def index(ctx: Context, cid: str, st: State, profile: dict[str, Any]) -> None:
        """Keep the partition's cell and area index in step with the customer's profile."""
        cells = set(profile.get("home_cell_ids") or ())
        area = str(profile.get("area_code") or "")
        before, before_area = set(st.get("oc") or ()), str(st.get("oa") or "")
        for c in sorted(before - cells):
            _remove(ctx.kv, f"cell:{c}", cid)
        for c in sorted(cells - before):
            _add(ctx.kv, f"cell:{c}", cid)
        if area != before_area:
            if before_area:
                _remove(ctx.kv, _area_key(before_area, cid), cid)
                _remove(ctx.kv, f"area:{before_area}", cid)  # a state from before the buckets
            if area:
                _add(ctx.kv, _area_key(area, cid), cid)
        if cells != before:
            st["oc"] = sorted(cells)
        if area != before_area:
            st["oa"] = area

    def affected(self, ctx: Context, o: Outage) -> list[str]:
        """The partition's customers the outage concerns: served in one of its cells or in
        one of its areas."""
        found: set[str] = set()
        for c in o.cells:
            found.update(ctx.kv.get(f"cell:{c}") or ())
        for a in o.areas:
            found.update(ctx.kv.get(f"area:{a}") or ())  # a state from before the buckets
            for n in range(AREA_BUCKETS):
                found.update(ctx.kv.get(f"area:{a}:{n}") or ())
        return sorted(found)

    # -- outages -----------------------------------------------------------------------------

    @staticmethod
    def fan_out(ctx: Context, message: outages_pb2.OutageEvent) -> None:
        """network.outages.v1, read in one partition: a copy to every partition."""
        for key in topics.partition_keys(FANOUT):
            ctx.emit(FANOUT, key, message)

    def handle(self, ctx: Context, message: outages_pb2.OutageEvent) -> None:
        """An outage's copy in this partition: plan its notices here, or end it."""
        kind = message.WhichOneof("payload")
        if kind == "outage_announced":
            self._announced(ctx, message)
        elif kind == "outage_ended":
            self._ended(ctx, message.outage_ended.outage_id or message.outage_id, message)

    def _announced(self, ctx: Context, message: outages_pb2.OutageEvent) -> None:
        a = message.outage_announced
        oid = a.outage_id or message.outage_id
        most = self.rules.notices.max_cells
        if len(a.cell_ids) > most:
            raise InvalidEvent(f"outage {oid} names {len(a.cell_ids)} cells (at most {most})")
        if not a.cell_ids and not a.area_codes:
            raise InvalidEvent(f"outage {oid} names no cell and no area")
        if not a.HasField("starts_at"):
            raise InvalidEvent(f"outage {oid} has no start")
        key = PREFIX + oid
        st: dict[str, Any] = dict(ctx.kv.get(key) or {})
        o = Outage(
            outage_id=oid,
            kind=outages_pb2.OutageAnnounced.Kind.Name(a.kind),
            services=tuple(sorted(set(a.services))),
            cells=tuple(sorted(set(a.cell_ids))),
            areas=tuple(sorted(set(a.area_codes))),
            starts_ms=a.starts_at.ToMilliseconds(),
            ends_ms=a.ends_at.ToMilliseconds() if a.HasField("ends_at") else None,
            announced_ms=message.occurred_at.ToMilliseconds(),
            description=a.description,
            ended_ms=st.get("o", {}).get("ended_ms", st.get("ended_ms")),
        )
        # As the state keeps it: through JSON (its tuples come back lists), or a redelivered
        # copy would be planned again (a report's counts and `affected` with it).
        if st.get("o") == json.loads(json.dumps(o.to_state())):
            log.info("outage known", extra={"outage_id": oid, "partition": ctx.partition})
            return  # a redelivery
        if o.ended_ms is not None and "o" not in st:  # ended before it was announced
            st = {"o": o.to_state(), "done": {}, "due": {}, "n": {}, "affected": 0}
            self._save(ctx, key, st)
            return
        previous = Outage.of_state(st["o"]) if "o" in st else None  # announced before
        done: dict[str, str] = st.setdefault("done", {})  # phase -> SENT, SKIPPED, ...
        dues = {p: d for p, d in notices.phase_dues(o, self.rules.notices).items() if p not in done}
        # Planned as of the announcement, not of the partition's time when this copy arrives:
        # that time runs ahead by however long the copy took through the fan-out (other
        # inputs' records move it meanwhile), so a notice due soon after the announcement
        # would be skipped or sent by how fast the hop was. A notice already due by the
        # partition's time fires with this copy (hvc.common.streams), as of its due time.
        now, skipped, later = notices.plan(dues, o.announced_ms)
        st["o"], st["due"] = o.to_state(), later
        st.setdefault("n", {})
        for phase in skipped:
            done[phase] = "SKIPPED"
        for phase, due in later.items():
            ctx.schedule(due, key, NOTICE, [oid, phase, due])
        cids = self.affected(ctx, o)
        tiers = self.rules.notices.tiers
        at = o.announced_ms
        st["affected"] = sum(1 for c in cids if tier_at(ctx.state(c).get("tier", {}), at) in tiers)
        self._place(ctx, o, previous)
        for phase in now:
            self._notify(ctx, o, st, phase, cids, at)
        self._save(ctx, key, st)
        log.info(
            "outage planned",
            extra={
                "outage_id": oid,
                "partition": ctx.partition,
                "customers": len(cids),
                "now": now,
                "skipped": skipped,
                "later": later,
                "partition_time": _iso(ctx.partition_time_ms),
            },
        )

    def _ended(self, ctx: Context, oid: str, message: outages_pb2.OutageEvent) -> None:
        key = PREFIX + oid
        st: dict[str, Any] = dict(ctx.kv.get(key) or {})
        e = message.outage_ended
        ended = e.ended_at if e.HasField("ended_at") else message.occurred_at
        if "o" not in st:  # an end of an outage this pipeline never saw announced: kept, so
            # that its announcement, if it comes after all, tells nobody of an outage over
            ctx.kv.set(key, {"ended_ms": ended.ToMilliseconds()})
            return
        o = Outage.of_state(st["o"])
        if o.ended_ms is not None:
            return  # a redelivery
        o = Outage.of_state({**st["o"], "ended_ms": ended.ToMilliseconds()})
        st["o"] = o.to_state()
        done = st.setdefault("done", {})
        ended_ms = int(o.ended_ms or 0)
        # Notices due after the end are no longer needed; those due by then are still sent
        # when their time comes (this copy may come before the partition's time reaches it).
        dues: dict[str, int] = st.get("due", {})
        for phase, due in dues.items():
            if due > ended_ms:
                done.setdefault(phase, "OUTAGE_ENDED")
        st["due"] = {p: d for p, d in dues.items() if d <= ended_ms}
        if not o.planned and ENDED not in done:
            self._notify(ctx, o, st, ENDED, self.affected(ctx, o), max(ended_ms, o.announced_ms))
        self._save(ctx, key, st)

    def fire(self, ctx: Context, key: str, arg: Any) -> None:
        phase, due = str(arg[1]), int(arg[2])  # arg[0]: the outage id, for the logs
        st: dict[str, Any] = dict(ctx.kv.get(key) or {})
        if st.get("due", {}).get(phase) != due or phase in st.get("done", {}):
            log.info(
                "outage notice not sent",
                extra={
                    "outage_id": arg[0],
                    "partition": ctx.partition,
                    "phase": phase,
                    "due": st.get("due", {}).get(phase),
                    "done": st.get("done", {}).get(phase),
                },
            )
            return  # moved by a later announcement, ended, or sent
        st["due"] = {p: d for p, d in st["due"].items() if p != phase}
        o = Outage.of_state(st["o"])
        self._notify(ctx, o, st, phase, self.affected(ctx, o))
        self._save(ctx, key, st)

    # -- the reports' counts, as decisions come ---------------------------------------------------

    @staticmethod
    def _place(ctx: Context, o: Outage, previous: Outage | None) -> None:
        """The outage in its cells' and areas' lists of latest outages, as now announced (out
        of the places an earlier announcement named and this one does not)."""
        keys = _places(o.cells, o.areas)
        if previous is not None:
            now = set(keys)
            for key in (k for k in _places(previous.cells, previous.areas) if k not in now):
                left = [r for r in ctx.kv.get(key) or () if r[0] != o.outage_id]
                if left:
                    ctx.kv.set(key, left)
                else:
                    ctx.kv.delete(key)
        for key in keys:
            latest = [r for r in ctx.kv.get(key) or () if r[0] != o.outage_id]
            latest.append([o.outage_id, o.announced_ms])
            latest.sort(key=lambda r: (int(r[1]), str(r[0])))
            ctx.kv.set(key, latest[-KEEP_RECENT:])

    def standing(self, ctx: Context, st: State) -> dict[str, bool]:
        """Of the latest outages of the customer's cells and area (`st`, its state): whether
        its tier at each one's announcement is in the programme, by the decisions known
        now. Asked before a decision is applied, told to `restand` after it."""
        keys = _places(st.get("oc") or (), [st["oa"]] if st.get("oa") else ())
        tiers, tier = self.rules.notices.tiers, st.get("tier", {})
        out: dict[str, bool] = {}
        for key in keys:
            for oid, at in ctx.kv.get(key) or ():
                out[str(oid)] = tier_at(tier, int(at)) in tiers
        return out

    def restand(self, ctx: Context, st: State, before: dict[str, bool]) -> None:
        """A decision applied: each outage whose count the customer is in or out of now
        by its tier at the announcement (`standing` before it) counts it so."""
        for oid, now in self.standing(ctx, st).items():
            if oid not in before or before[oid] == now:
                continue
            key = PREFIX + oid
            ost: dict[str, Any] = dict(ctx.kv.get(key) or {})
            if "o" not in ost:
                continue
            ost["affected"] = max(0, int(ost.get("affected", 0)) + (1 if now else -1))
            self._save(ctx, key, ost)

    # -- notices ------------------------------------------------------------------------------

    def tier_known(self, ctx: Context, cid: str, st: State, effective_ms: int) -> None:
        """A tier decision: the notices the customer was not sent for want of a programme
        tier at an instant it is in force by are decided again, as of then (a late upgrade
        sends them; a late downgrade takes nothing back)."""
        late: list[list[Any]] = st.get("onl") or []
        if not late:
            return
        st["onl"] = []
        for oid, phase, at in late:
            if int(at) < effective_ms:
                st["onl"].append([oid, phase, at])  # not in force then
                continue
            key = PREFIX + str(oid)
            ost: dict[str, Any] = dict(ctx.kv.get(key) or {})
            if "o" in ost:
                self._notify(ctx, Outage.of_state(ost["o"]), ost, str(phase), [cid], int(at))
                self._save(ctx, key, ost)

    def _notify(
        self,
        ctx: Context,
        o: Outage,
        st: dict[str, Any],
        phase: str,
        cids: list[str],
        at_ms: int | None = None,
    ) -> None:
        """The phase's notices to `cids`; `at_ms`: a notice decided late, as of then."""
        rules = self.rules.notices
        counts: dict[str, int] = st.setdefault("n", {})
        at = max(ctx.now_ms, o.announced_ms) if at_ms is None else at_ms
        code = notices.template(o, phase)
        params = {
            "outage_id": o.outage_id,
            "phase": phase,
            "kind": o.kind,
            "services": ",".join(o.services),
            "starts_at": _iso(o.starts_ms),
            "ends_at": _iso(o.ends_ms),
            "ended_at": _iso(o.ended_ms),
        }
        text = self.templates.render(code, params, self.rules.zone)
        when = dt.datetime.fromtimestamp(at / 1000, dt.UTC)
        sent, waiting = 0, 0
        for cid in cids:
            cst = ctx.state(cid)
            profile = dict(cst.get("crm", {}).get("profile") or {})
            tier = tier_at(cst.get("tier", {}), at)  # in force when the notice is due
            why = notices.withheld(tier, bool(profile.get("do_not_disturb")), o, rules)
            if why == "NOT_HIGH_VALUE":  # as far as is known now: a late decision may send it
                late: list[list[Any]] = cst.setdefault("onl", [])
                late.append([o.outage_id, phase, at])
                del late[:-KEEP_LATE]
                waiting += 1
                continue
            if why is not None:
                counts[f"suppressed:{why}"] = counts.get(f"suppressed:{why}", 0) + 1
                continue
            nid = f"notice|{o.outage_id}|{cid}|{phase}"
            messages.send(
                ctx,
                nid,
                cid,
                template=code,
                params=params,
                text=text,
                channel=rules.channel,
                at=when,
                kind="NOTICE",
                by="system:notices",
                outage_id=o.outage_id,
            )
            sent += 1
        counts["sent"] = counts.get("sent", 0) + sent
        log.info(
            "outage notices",
            extra={
                "outage_id": o.outage_id,
                "partition": ctx.partition,
                "phase": phase,
                "at": _iso(at),
                "sent": sent,
                "waiting_for_tier": waiting,
                "customers": len(cids),
            },
        )
        st.setdefault("done", {})[phase] = "SENT"
        sent_of: dict[str, int] = st.setdefault("sent", {})
        sent_of[phase] = sent_of.get(phase, 0) + sent

    def _save(self, ctx: Context, key: str, st: dict[str, Any]) -> None:
        ctx.kv.set(key, st)
        o = Outage.of_state(st["o"])
        phases = {
            p: {"due_at": _iso(due), "state": st.get("done", {}).get(p, "PLANNED")}
            for p, due in notices.phase_dues(o, self.rules.notices).items()
        }
        if o.ended_ms is not None and not o.planned:
            phases[ENDED] = {"due_at": _iso(o.ended_ms), "state": st["done"].get(ENDED, "PLANNED")}
        for p, n in st.get("sent", {}).items():
            phases.setdefault(p, {"due_at": "", "state": "SENT"})["sent"] = n
        doc = {
            "outage_id": o.outage_id,
            "partition": ctx.partition,
            "kind": o.kind,
            "services": list(o.services),
            "cells": len(o.cells),
            "areas": list(o.areas),
            "starts_at": _iso(o.starts_ms),
            "ends_at": _iso(o.ends_ms),
            "ended_at": _iso(o.ended_ms),
            "announced_at": _iso(o.announced_ms),
            "description": o.description,
            "affected": int(st.get("affected", 0)),
            "counts": dict(st.get("n", {})),
            "phases": phases,
        }
        ctx.view(VIEW, f"{o.outage_id} {ctx.partition:03d}", doc)
