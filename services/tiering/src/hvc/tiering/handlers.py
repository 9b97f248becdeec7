"""Handlers of the tiering service: one function per input, dependencies as arguments."""

from __future__ import annotations

import datetime as dt
import re

from hvc.common.codec import InvalidEvent, instant
from hvc.common.service import EventMeta
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2
from hvc.tiering.decisions import Decider
from hvc.tiering.domain.model import Bill, GroupSnapshot, Payment, PlanVersion, Profile

PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _date(d: common_pb2.Date) -> dt.date | None:
    return dt.date(d.year, d.month, d.day) if d.year else None


async def on_customer_event(
    event: customers_pb2.CustomerEvent, meta: EventMeta, *, decider: Decider
) -> None:
    kind = event.WhichOneof("payload")
    at = instant(event.occurred_at)
    repo = decider.repo
    if kind == "customer_upserted":
        u = event.customer_upserted
        profile = Profile(
            event.event_id,
            at,
            _date(u.joined_on) if u.HasField("joined_on") else None,
            u.group_id if u.HasField("group_id") and u.group_id else None,
            u.is_key_person,
        )
        if await repo.add_profile(event.customer_id, profile):
            await decider.settle(event.customer_id)
    elif kind == "plan_changed":
        p = event.plan_changed
        if not p.HasField("effective_from"):
            raise InvalidEvent("PlanChanged.effective_from is required")
        start = instant(p.effective_from)
        end = instant(p.effective_to) if p.HasField("effective_to") else None
        if end is not None and end < start:
            raise InvalidEvent("PlanChanged.effective_to is before effective_from")
        plan = PlanVersion(event.event_id, p.plan_id, p.monthly_fee_fen, p.gotone, start, end, at)
        if await repo.add_plan(event.customer_id, plan):
            await decider.settle(event.customer_id)
    elif kind == "group_upserted":
        g = event.group_upserted
        if not g.group_id:
            raise InvalidEvent("GroupUpserted.group_id is required")
        snap = GroupSnapshot(
            event.event_id, at, g.group_id, g.name, g.sector, g.handsets, g.monthly_spend_fen
        )
        if await repo.add_group_snapshot(snap):
            for customer_id in await repo.key_people_of(g.group_id):
                await decider.settle(customer_id)
    # contract_signed and port_out_requested do not bear on tiers.


async def on_account_event(
    event: accounts_pb2.AccountEvent, meta: EventMeta, *, decider: Decider
) -> None:
    kind = event.WhichOneof("payload")
    at = instant(event.occurred_at)
    if kind == "bill_issued":
        b = event.bill_issued
        if not b.bill_id:
            raise InvalidEvent("BillIssued.bill_id is required")
        if not PERIOD.fullmatch(b.period):
            raise InvalidEvent(f"BillIssued.period {b.period!r} is not YYYY-MM")
        if b.countable_fen > b.amount_fen:
            raise InvalidEvent("BillIssued.countable_fen exceeds amount_fen")
        bill = Bill(b.bill_id, b.period, b.amount_fen, b.countable_fen, at)
        # Bills feed the annual run and the reports; they never move a tier by themselves.
        await decider.repo.put_bill(event.customer_id, bill)
    elif kind == "payment_received":
        payment = Payment(event.event_id, at, event.payment_received.amount_fen)
        await decider.repo.add_payment(event.customer_id, payment)
    # Suspensions and resumptions do not bear on tiers.
