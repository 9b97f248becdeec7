"""Daily closes only where a bill can raise: the pipeline's warnings are the processors'
closed at every midnight, over random bills and payments, with far fewer closes."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from hvc.common.streams import MemoryPartition, Pipeline, Record
from hvc.events.v1 import accounts_pb2, common_pb2, warnings_pb2
from hvc.warnings import streams
from hvc.warnings.documents import TOPIC
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.pipeline import INPUTS, WarningsHandler

RULES = load_rules(DEFAULT_RULES)
GRACE = 900
ACCOUNTS = "billing.accounts.v1"
START = dt.datetime(2025, 1, 1, 1, tzinfo=dt.UTC)


def _account(n: int, when: dt.datetime, cid: str, **payload: Any) -> accounts_pb2.AccountEvent:
    m = accounts_pb2.AccountEvent(event_id=f"a{n}", customer_id=cid, **payload)
    m.occurred_at.FromDatetime(when)
    return m


def _bill(bill_id: str, period: str, amount: int, due: dt.date) -> accounts_pb2.BillIssued:
    return accounts_pb2.BillIssued(
        bill_id=bill_id,
        period=period,
        amount_fen=amount,
        countable_fen=amount,
        due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
    )


def _feed(seed: int, customers: int = 6, months: int = 4) -> list[accounts_pb2.AccountEvent]:
    """Monthly bills due on the 20th; each paid early, late, in part, twice or never."""
    rng = random.Random(seed)
    out: list[tuple[dt.datetime, accounts_pb2.AccountEvent]] = []
    n = 0
    for c in range(customers):
        cid = f"C{c}"
        for m in range(months):
            issued = START + dt.timedelta(days=30 * m + rng.randrange(0, 3))
            period = f"{issued.year}-{issued.month:02d}"
            due = issued.date() + dt.timedelta(days=rng.choice([5, 12, 19]))
            amount = rng.choice([0, 5_000, 12_000])
            n += 1
            b = _bill(f"B{c}-{period}", period, amount, due)
            out.append((issued, _account(n, issued, cid, bill_issued=b)))
            for _ in range(rng.choice([0, 1, 1, 2])):
                n += 1
                paid = issued + dt.timedelta(days=rng.randrange(0, 25), hours=rng.randrange(24))
                part = rng.choice([amount, amount, amount // 2])
                bill_id = f"B{c}-{period}" if rng.random() < 0.5 else None
                p = accounts_pb2.PaymentReceived(amount_fen=part)
                if bill_id:
                    p.bill_id = bill_id
                out.append((paid, _account(n, paid, cid, payment_received=p)))
    out.sort(key=lambda x: (x[0], x[1].event_id))
    return [m for _, m in out]


class Counting(WarningsHandler):
    def __init__(self) -> None:
        super().__init__(RULES, GRACE, 2 * 86_400)
        self.fired = 0

    def fire(self, ctx: Any, key: str, what: str, arg: Any) -> None:
        self.fired += what == "daily"
        super().fire(ctx, key, what, arg)


def _pipeline(feed: list[accounts_pb2.AccountEvent]) -> tuple[list[tuple[str, ...]], int]:
    handler = Counting()
    pipeline = Pipeline.of("warnings", INPUTS, handler)
    part = MemoryPartition()
    out: list[tuple[str, bytes | None]] = []
    for i, m in enumerate(feed):
        record = Record(ACCOUNTS, 0, i, 0, m.customer_id.encode())
        pipeline.step(part, record, m.SerializeToString(), lambda t, k, v, h: out.append((t, v)))
    got = []
    for t, v in out:
        assert t == TOPIC, t
        event = warnings_pb2.WarningEvent.FromString(v)
        w = event.warning_raised
        code = warnings_pb2.WarningRaised.Code.Name(w.code)
        detected = w.detected_at.ToDatetime(dt.UTC).isoformat()
        got.append((event.customer_id, code, w.period, detected))
    return sorted(got), handler.fired


def _every_midnight(feed: list[accounts_pb2.AccountEvent]) -> tuple[list[tuple[str, ...]], int]:
    """The accounts processor alone, closed at every midnight passed, for every customer with
    a bill (as the daily close ran before)."""
    p = next(x for x in streams.processors(RULES, GRACE, 2 * 86_400) if x.topic == ACCOUNTS)
    states: dict[str, dict[str, Any]] = {}
    raised: list[tuple[str, ...]] = []
    closes = 0
    last = 0
    for m in feed:
        now = m.occurred_at.seconds
        for cid, st in states.items():
            if st.get("bills"):
                got = p.close({cid: st}, last, now)
                closes += len(p._closing(last, now, monthly=False))
                raised += [
                    (cid, x.signal.code.value, x.signal.period, x.at.isoformat()) for x in got
                ]
        last = max(last, now)
        got = p.apply(m, states.setdefault(m.customer_id, {}))
        raised += [
            (r.customer_id, r.signal.code.value, r.signal.period, r.at.isoformat()) for r in got
        ]
    return sorted(raised), closes


@pytest.mark.parametrize("seed", range(8))
def test_closes_only_where_a_bill_can_raise_decide_the_same(seed: int) -> None:
    feed = _feed(seed)
    got, fired = _pipeline(feed)
    want, closes = _every_midnight(feed)
    assert got == want
    assert {c for _, c, _, _ in want} >= {"PAYMENT_DUE_SOON"}  # the feed exercises them
    assert fired < closes / 4  # and far fewer closes


def test_a_customer_whose_bills_are_paid_has_no_daily_close_after_them() -> None:
    due = START.date() + dt.timedelta(days=19)
    b = _bill("B1", "2025-01", 100, due)
    feed = [
        _account(1, START, "C1", bill_issued=b),
        _account(
            2,
            START + dt.timedelta(hours=2),
            "C1",
            payment_received=accounts_pb2.PaymentReceived(amount_fen=100),
        ),
        _account(
            3,
            START + dt.timedelta(days=60),
            "C1",
            payment_received=accounts_pb2.PaymentReceived(amount_fen=1),
        ),
    ]
    got, fired = _pipeline(feed)
    # The close set while the bill was unpaid (its first day due soon) fires and finds it
    # paid; none after it, where every midnight of the 60 days closed it before.
    assert got == [] and fired == 1
