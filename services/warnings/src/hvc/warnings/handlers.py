"""Handlers of the warnings service: one function per input, dependencies as arguments.

Window state lives in faust tables (changelog-backed, so it survives a restart mid-window),
one per input topic so each is co-partitioned with its stream. Table updates are idempotent
(a set of days, amounts keyed by period): a changelog entry replayed after a crash changes
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from typing import Any

from hvc.common.codec import InvalidEvent, instant
from hvc.common.service import EventMeta
from hvc.events.v1 import accounts_pb2, calls_pb2, customers_pb2, usage_pb2
from hvc.warnings.domain import signals
from hvc.warnings.raiser import Raiser

KEEP_DAYS = 14  # forwarding days kept per customer: enough for any consecutive-days rule
KEEP_MONTHS = 6  # billed months kept per customer: the current and the 3 before, with margin

Table = MutableMapping[str, Any]


async def on_call(
    event: calls_pb2.CallRecorded, meta: EventMeta, *, raiser: Raiser, forward_days: Table
) -> None:
    at = instant(event.occurred_at)
    rules = raiser.rules
    s = signals.rival_service_call(event.event_id, event.other_number, event.duration_s, at, rules)
    if s is not None:
        await raiser.raise_(event.customer_id, s, at)
    if event.HasField("forwarded_to") and signals.is_rival_mobile(event.forwarded_to, rules):
        day = signals.local_day(at, rules).isoformat()
        days = sorted(set(forward_days[event.customer_id]) | {day})[-KEEP_DAYS:]
        forward_days[event.customer_id] = days
        for s in signals.forward_to_rival({dt.date.fromisoformat(d) for d in days}, rules):
            await raiser.raise_(event.customer_id, s, at)


async def on_usage(event: usage_pb2.UsageRecorded, meta: EventMeta, *, raiser: Raiser) -> None:
    # DATA_DROP is decided at the monthly close, which arrives with the scheduled closes.
    return None


async def on_account_event(
    event: accounts_pb2.AccountEvent, meta: EventMeta, *, raiser: Raiser, billed: Table
) -> None:
    at = instant(event.occurred_at)
    kind = event.WhichOneof("payload")
    cid = event.customer_id
    if kind == "account_suspended":
        if event.account_suspended.reason == accounts_pb2.AccountSuspended.KEEP_NUMBER:
            await raiser.raise_(
                cid, signals.keep_number_suspension(event.event_id, at, raiser.rules), at
            )
    elif kind == "bill_issued":
        b = event.bill_issued
        if len(b.period) != 7 or b.period[4] != "-":
            raise InvalidEvent(f"BillIssued.period {b.period!r} is not YYYY-MM")
        amounts = dict(billed[cid])
        amounts[b.period] = b.amount_fen
        billed[cid] = dict(sorted(amounts.items())[-KEEP_MONTHS:])
        for s in (
            signals.zero_spend(b.period, b.amount_fen),
            signals.spend_drop(amounts, b.period, raiser.rules),
        ):
            if s is not None:
                await raiser.raise_(cid, s, at)


async def on_customer_event(
    event: customers_pb2.CustomerEvent, meta: EventMeta, *, raiser: Raiser
) -> None:
    at = instant(event.occurred_at)
    kind = event.WhichOneof("payload")
    if kind == "port_out_requested":
        name = customers_pb2.PortOutRequested.Kind.Name(event.port_out_requested.kind)
        await raiser.raise_(
            event.customer_id, signals.port_out_query(event.event_id, name, at, raiser.rules), at
        )
    elif kind == "customer_upserted":
        u = event.customer_upserted
        await raiser.repo.put_profile(
            event.customer_id,
            {
                "at": at,
                "manager_id": u.manager_id if u.HasField("manager_id") else None,
                "do_not_disturb": u.do_not_disturb,
                "group_id": u.group_id if u.HasField("group_id") else None,
            },
        )
