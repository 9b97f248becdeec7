"""The warnings service's rules as processors, one per input topic, over a customer's state
(hvc.warnings.pipeline runs them on the stream engine and collects their raises as data).

Each `apply` folds an event into its customer's state and returns the warnings to raise; each
`close` runs when a partition's event-time watermark, less the grace for late events, passes
a local midnight (daily closes) or a first of the month (monthly closes) and raises the
signals of absence over every customer of that partition. A close's decision time is the
boundary itself, so a replay decides the same.

State is small and bounded: forwarding days (14), raised-signal memos (32; the warning ids
counted, hvc.warnings.pipeline: 128), bills (6 months), data volumes (5 months) with the ids
of the data records within the usage lateness horizon, contracts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.message import Message
from prometheus_client import Counter

from hvc.common.calendar import Midnights
from hvc.common.codec import InvalidEvent, instant
from hvc.events.v1 import accounts_pb2, calls_pb2, common_pb2, customers_pb2, tiering_pb2, usage_pb2
from hvc.warnings.domain import signals
from hvc.warnings.domain.rules import Code, WarningRules
from hvc.warnings.domain.signals import Signal

State = dict[str, Any]
LATE_EVENTS = Counter(
    "hvc_late_events_total",
    "Events older than their processor's de-duplication horizon: not counted (a copy of one "
    "counted before cannot be told from a late first delivery)",
    ["topic"],
)


class Processor(Protocol):
    """What one input topic does: its message type, the key of its state, and the rules."""

    @property
    def topic(self) -> str: ...

    @property
    def message(self) -> type[Message]: ...

    def key(self, event: Any) -> str | None:
        """The state key (customer id); None for events that carry no keyed state."""

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        """Fold the event into `state` (mutate it) and return the warnings it raises.
        Raise InvalidEvent to dead-letter the event without changing anything."""

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Raise]:
        """The states' event time moved from `before` to `after` (epoch seconds): the
        warnings of absence it raises."""


KEEP_DAYS = 14  # forwarding days: enough for any consecutive-days rule
KEEP_TIERS = 24  # tier decisions kept per customer (a handful a year)
KEEP_RAISED = 32  # memo of raised (code, period): spares the store a repeated claim
KEEP_BILLS = 6  # the current month and the 3 before, with margin
KEEP_VOLUMES = 5
KEEP_PAYMENTS = 24
KEEP_ENDED = 8  # ended contracts' ids: a replayed signature of one does not bring it back


def _date(d: common_pb2.Date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


@dataclass(frozen=True)
class Raise:
    """A signal found for a customer, decided at `at`: what the rules decide, as data."""

    customer_id: str
    signal: Signal
    at: dt.datetime


@dataclass
class _Base:
    rules: WarningRules
    grace_s: int
    midnights: Midnights = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.midnights = Midnights(self.rules.zone)

    def key(self, event: Any) -> str | None:
        return str(event.customer_id) or None

    def _raise(
        self, state: State, cid: str, found: Sequence[Signal | None], at: dt.datetime
    ) -> list[Raise]:
        """The signals not raised yet from this state (a memo of the last KEEP_RAISED; the
        views and consumers de-duplicate by warning id beyond it)."""
        memo: list[str] = state.setdefault("raised", [])
        out: list[Raise] = []
        for s in found:
            if s is None:
                continue
            tag = f"{s.code.value} {s.period}"
            if tag in memo:
                continue
            memo.append(tag)
            out.append(Raise(cid, s, at))
        del memo[:-KEEP_RAISED]
        return out

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Raise]:
        return ()

    def _closing(self, before: int, after: int, monthly: bool) -> list[dt.datetime]:
        crossed = self.midnights.crossed(before - self.grace_s, after - self.grace_s)
        if monthly:
            return [m for m in crossed if signals.local_day(m, self.rules).day == 1]
        return crossed


class Calls(_Base):
    topic = "network.calls.v1"
    message = calls_pb2.CallRecorded

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        rules = self.rules
        other = event.other_number
        forwarded = event.HasField("forwarded_to") and signals.is_rival_mobile(
            event.forwarded_to, rules
        )
        if not forwarded and signals.normalize(other) not in rules.rival_service_numbers:
            return ()  # the hot path: an ordinary call leaves no state
        at = instant(event.occurred_at)
        cid = event.customer_id
        found: list[Signal | None] = [
            signals.rival_service_call(event.event_id, other, event.duration_s, at, rules)
        ]
        if forwarded:
            day = signals.local_day(at, rules).isoformat()
            days = sorted(set(state.get("fwd", ())) | {day})[-KEEP_DAYS:]
            state["fwd"] = days
            found += signals.forward_to_rival({dt.date.fromisoformat(d) for d in days}, rules)
        return self._raise(state, cid, found, at)


class Usage(_Base):
    """Monthly data volume per customer; DATA_DROP at each monthly close."""

    topic = "billing.usage.v1"
    message = usage_pb2.UsageRecorded

    def __init__(self, rules: WarningRules, grace_s: int, lateness_s: int) -> None:
        super().__init__(rules, grace_s)
        # How far behind the customer's newest data record another may come and still count:
        # the ids within it are kept, so a redelivered record counts once. One older than
        # that cannot be told from a copy and is not counted (hvc_late_events_total): usage is
        # many records per customer a day, and the ids of the months kept would not fit.
        self.lateness_s = lateness_s

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        if event.kind != usage_pb2.UsageRecorded.DATA:
            return ()
        if event.volume_bytes < 0:
            raise InvalidEvent(f"UsageRecorded.volume_bytes {event.volume_bytes} is negative")
        at = event.occurred_at.seconds
        newest = state.get("t", at)
        if at < newest - self.lateness_s:
            LATE_EVENTS.labels(self.topic).inc()
            return ()
        seen: dict[str, int] = state.setdefault("seen", {})  # event id -> occurred_at (s)
        if event.event_id in seen or event.event_id in state.get("ids", ()):
            return ()
        seen[event.event_id] = at
        state.pop("ids", None)  # the last 16 ids, kept before the horizon was
        if at >= newest:
            state["t"] = at
            for gone in [k for k, t in seen.items() if t < at - self.lateness_s]:
                del seen[gone]
        day = dt.datetime.fromtimestamp(at, self.rules.zone).date()
        month = signals.month_of(day)
        volumes: dict[str, int] = state.setdefault("m", {})
        state.setdefault("first", month)
        if month < state["first"]:
            state["first"] = month
        volumes[month] = volumes.get(month, 0) + event.volume_bytes
        if len(volumes) > KEEP_VOLUMES:
            for old in sorted(volumes)[:-KEEP_VOLUMES]:
                del volumes[old]
        return ()

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Raise]:
        raises: list[Raise] = []
        for boundary in self._closing(before, after, monthly=True):
            closed = signals.previous_periods(
                signals.month_of(signals.local_day(boundary, self.rules)), 1
            )[0]
            months = [closed, *signals.previous_periods(closed, 3)]
            for cid, state in states.items():
                first = state.get("first")
                if first is None or first > months[-1]:
                    continue  # fewer than 3 full months known
                volumes = state.get("m", {})
                history = {m: volumes.get(m, 0) for m in months}
                found = [signals.data_drop(history, closed, self.rules)]
                raises += self._raise(state, cid, found, boundary)
        return raises


def settlement(state: State) -> dict[str, int | None]:
    """When each bill was fully paid (epoch seconds), or None: payments in time order, each
    to its bill, or without a bill to the oldest unpaid bills first."""
    bills: dict[str, dict[str, Any]] = state.get("bills", {})
    paid = dict.fromkeys(bills, 0)
    paid_at: dict[str, int | None] = dict.fromkeys(bills, None)
    by_id = {v["id"]: k for k, v in bills.items()}
    for _eid, (at_s, amount, bill_id) in sorted(
        state.get("pays", {}).items(), key=lambda kv: (kv[1][0], kv[0])
    ):
        if bill_id is not None:
            targets = [by_id[bill_id]] if bill_id in by_id else []
        else:
            targets = [k for k in sorted(bills) if paid_at[k] is None]
        left = amount
        for period in targets:
            if left <= 0:
                break
            take = (
                left if bill_id is not None else min(left, bills[period]["amount"] - paid[period])
            )
            paid[period] += take
            left -= take
            if paid_at[period] is None and paid[period] >= bills[period]["amount"]:
                paid_at[period] = at_s
    return paid_at


class Accounts(_Base):
    """Bills and payments: ZERO_SPEND and SPEND_DROP on the bill, PAYMENT_DUE_SOON and OVERDUE
    at the daily close, KEEP_NUMBER_SUSPENSION as it happens."""

    topic = "billing.accounts.v1"
    message = accounts_pb2.AccountEvent

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        at = instant(event.occurred_at)
        kind = event.WhichOneof("payload")
        cid = event.customer_id
        if kind == "account_suspended":
            if event.account_suspended.reason == accounts_pb2.AccountSuspended.KEEP_NUMBER:
                s = signals.keep_number_suspension(event.event_id, at, self.rules)
                return self._raise(state, cid, [s], at)
        elif kind == "bill_issued":
            return self._bill(event, state, cid, at)
        elif kind == "payment_received":
            self._pay(event, state)
        return ()

    def _bill(self, event: Any, state: State, cid: str, at: dt.datetime) -> Sequence[Raise]:
        b = event.bill_issued
        if len(b.period) != 7 or b.period[4] != "-":
            raise InvalidEvent(f"BillIssued.period {b.period!r} is not YYYY-MM")
        if b.amount_fen < 0:
            raise InvalidEvent(f"BillIssued.amount_fen {b.amount_fen} is negative")
        bills: dict[str, dict[str, Any]] = state.setdefault("bills", {})
        # A re-issued bill replaces the first: keyed by period, so a redelivery changes nothing.
        bills[b.period] = {"id": b.bill_id, "amount": b.amount_fen, "due": _date(b.due_on)}
        for old_period in sorted(bills)[:-KEEP_BILLS]:
            del bills[old_period]
        amounts = {p: v["amount"] for p, v in bills.items()}
        found = [
            signals.zero_spend(b.period, b.amount_fen),
            signals.spend_drop(amounts, b.period, self.rules),
        ]
        return self._raise(state, cid, found, at)

    def _pay(self, event: Any, state: State) -> None:
        p = event.payment_received
        if p.amount_fen < 0:
            raise InvalidEvent(f"PaymentReceived.amount_fen {p.amount_fen} is negative")
        # Payments are kept by event id (a redelivery overwrites itself) and bills are settled
        # from them on demand, so arrival order and repeats do not change who paid what when.
        pays: dict[str, list[Any]] = state.setdefault("pays", {})
        bill_id = p.bill_id if p.HasField("bill_id") else None
        pays[event.event_id] = [event.occurred_at.seconds, p.amount_fen, bill_id]
        if len(pays) > KEEP_PAYMENTS:
            for eid, _ in sorted(pays.items(), key=lambda kv: (kv[1][0], kv[0]))[:-KEEP_PAYMENTS]:
                del pays[eid]

    def next_close_day(self, state: State, first: dt.date) -> dt.date | None:
        """The first day, from `first` on, whose daily close (at its local midnight) can
        raise for these accounts: for each bill unpaid so far, the first of its days due soon
        and the day after its due day, unless raised already. None: no close can raise until
        the accounts change."""
        bills: dict[str, dict[str, Any]] = state.get("bills", {})
        if not bills:
            return None
        memo = set(state.get("raised", ()))
        settled = settlement(state)
        soon = dt.timedelta(days=self.rules.payment_due_soon_days)
        days: list[dt.date] = []
        for period, bill in bills.items():
            if settled.get(period) is not None:
                continue
            due = dt.date.fromisoformat(bill["due"])
            if f"{Code.PAYMENT_DUE_SOON.value} {period}" not in memo and first <= due:
                days.append(max(first, due - soon))
            if f"{Code.OVERDUE.value} {period}" not in memo:
                days.append(max(first, due + dt.timedelta(days=1)))
        return min(days, default=None)

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Raise]:
        raises: list[Raise] = []
        rules = self.rules
        for boundary in self._closing(before, after, monthly=False):
            today = signals.local_day(boundary, rules)
            now_s = boundary.timestamp()
            for cid, state in states.items():
                if not state.get("bills"):
                    continue
                found: list[Signal | None] = []
                settled = settlement(state)
                for period, bill in state["bills"].items():
                    paid_at = settled.get(period)
                    if paid_at is not None and paid_at < now_s:
                        continue
                    due = dt.date.fromisoformat(bill["due"])
                    found.append(signals.payment_due_soon(period, due, False, today, rules))
                    found.append(signals.overdue(period, due, None, boundary, rules))
                if found:
                    raises += self._raise(state, cid, found, boundary)
        return raises


class Customers(_Base):
    """Profiles (in the state: manager, group, do-not-disturb), contracts (CONTRACT_EXPIRY at
    the monthly close) and port-out requests."""

    topic = "crm.customers.v1"
    message = customers_pb2.CustomerEvent

    def key(self, event: Any) -> str | None:
        return str(event.customer_id) or None  # GroupUpserted is keyed by group: no state

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        kind = event.WhichOneof("payload")
        cid = event.customer_id
        at = instant(event.occurred_at)
        if kind == "port_out_requested":
            name = customers_pb2.PortOutRequested.Kind.Name(event.port_out_requested.kind)
            s = signals.port_out_query(event.event_id, name, at, self.rules)
            return self._raise(state, cid, [s], at)
        if kind == "customer_upserted":
            u = event.customer_upserted
            current = state.get("profile")
            if current is not None and current["at"] > event.occurred_at.seconds:
                return ()  # a late, older profile does not replace a newer one
            profile = {
                "at": event.occurred_at.seconds,
                "manager_id": u.manager_id if u.HasField("manager_id") else None,
                "group_id": u.group_id if u.HasField("group_id") else None,
                "do_not_disturb": u.do_not_disturb,
                # Kept for the staff who call the customer; the gateway masks them for others.
                "msisdns": list(u.msisdns),
                "name": u.name,
                # Extended information the workbench's 360 shows (DOMAIN §5).
                "birthday": _date(u.birthday) if u.birthday.year else None,
                "joined_on": _date(u.joined_on) if u.joined_on.year else None,
                "is_key_person": u.is_key_person,
                # Where the customer is usually served: the outage notices' index.
                "home_cell_ids": sorted(set(u.home_cell_ids)),
                "area_code": u.area_code,
            }
            state["profile"] = profile
        elif kind == "contract_signed":
            c = event.contract_signed
            ends = _date(c.ends_on)
            # A replayed signature of a contract that has ended does not bring it back; the same
            # id signed again with another end (a renewal) does.
            if f"{c.contract_id} {ends}" not in state.get("ended", ()):
                state.setdefault("contracts", {})[c.contract_id] = ends
        return ()

    def close(self, states: Mapping[str, State], before: int, after: int) -> Sequence[Raise]:
        raises: list[Raise] = []
        for boundary in self._closing(before, after, monthly=True):
            day = signals.local_day(boundary, self.rules)
            for cid, state in states.items():
                contracts: dict[str, str] = state.get("contracts", {})
                found = [
                    signals.contract_expiry(k, dt.date.fromisoformat(v), day, self.rules)
                    for k, v in sorted(contracts.items())
                ]
                if found:
                    raises += self._raise(state, cid, found, boundary)
                for k, v in list(contracts.items()):
                    if v < day.isoformat():
                        del contracts[k]  # ended: nothing more to warn about
                        ended: list[str] = state.setdefault("ended", [])
                        ended.append(f"{k} {v}")
                        del ended[:-KEEP_ENDED]
        return raises


class Tiers(_Base):
    """The tier in force, from the tiering service's decisions: for assignment and reports."""

    topic = "hvc.tier-decisions.v1"
    message = tiering_pb2.TierDecided

    def apply(self, event: Any, state: State) -> Sequence[Raise]:
        at = event.effective_from.seconds
        name = common_pb2.Tier.Name(event.new_tier)
        # The timeline (the last KEEP_TIERS decisions by effective time): what was in force
        # at an instant, whatever order the decisions came in (messages to customers).
        timeline: list[list[Any]] = state.setdefault("tl", [])
        if [at, name] not in timeline:
            timeline.append([at, name])
            timeline.sort(key=lambda x: (int(x[0]), str(x[1])))
            del timeline[:-KEEP_TIERS]
        if state.get("at") is not None and state["at"] > at:
            return ()
        state["tier"] = name
        state["at"] = at
        return ()


def latest_tier(state: State) -> str:
    """The tier of the decision latest in effect (NONE before any): `state` is `Tiers`'."""
    return str(state.get("tier") or "NONE")


def tier_at(state: State, at_ms: int) -> str:
    """The tier in force at `at_ms` by the decisions known (NONE before any)."""
    if not state.get("tl"):  # a state from before the timeline: its latest decision
        return latest_tier(state)
    tier = "NONE"
    for effective_s, name in state["tl"]:
        if int(effective_s) * 1000 > at_ms:
            break
        tier = str(name)
    return tier


def processors(rules: WarningRules, grace_s: int, usage_lateness_s: int) -> list[Processor]:
    return [
        Calls(rules, grace_s),
        Usage(rules, grace_s, usage_lateness_s),
        Accounts(rules, grace_s),
        Customers(rules, grace_s),
        Tiers(rules, grace_s),
    ]


INPUTS = [p.topic for p in (Calls, Usage, Accounts, Customers, Tiers)]
