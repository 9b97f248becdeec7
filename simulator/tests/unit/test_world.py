"""The synthetic operator: deterministic per seed, every event valid under the contract, and
the spreads the services' rules need to see (rival calls, forwarding, arrears, port-outs)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hvc.common.codec import validate
from hvc.common.topics import spec
from hvc.simulator.world import Options, World


def play(seed: int, customers: int = 300, days: int = 70) -> list[tuple[str, str, object]]:
    w = World(Options(customers=customers, seed=seed, days=days))
    events = list(w.onboarding())
    for n in range(days):
        events.extend(w.day(n))
    return events


def test_same_seed_same_events_other_seed_other_events():
    a, b, c = play(7), play(7), play(8)
    assert [(t, k, m.SerializeToString()) for t, k, m in a] == [
        (t, k, m.SerializeToString()) for t, k, m in b
    ]
    assert [m.SerializeToString() for *_, m in a] != [m.SerializeToString() for *_, m in c]


def test_every_event_is_valid_for_its_topic_with_a_unique_id():
    events = play(1)
    ids = [m.event_id for *_, m in events]
    assert len(ids) == len(set(ids))
    for topic, key, m in events:
        assert isinstance(m, spec(topic).message)
        assert validate(m) == [], (topic, m)
        kind = m.WhichOneof("payload") if "payload" in m.DESCRIPTOR.oneofs_by_name else None
        if topic == "network.outages.v1":
            assert key == m.outage_id
            continue
        assert key == (m.group_upserted.group_id if kind == "group_upserted" else m.customer_id)


def test_the_feed_carries_what_the_rules_look_for():
    events = play(3, customers=2000, days=70)
    topics = Counter(t for t, *_ in events)
    assert set(topics) == {
        "crm.customers.v1",
        "billing.usage.v1",
        "billing.accounts.v1",
        "network.calls.v1",
        "care.complaints.v1",
        "network.outages.v1",
    }
    kinds = Counter(m.WhichOneof("payload") for t, _, m in events if t == "billing.accounts.v1")
    assert kinds["bill_issued"] >= 2000 * 2 and kinds["payment_received"] > 0
    assert kinds["account_suspended"] > 0
    calls = [m for t, _, m in events if t == "network.calls.v1"]
    assert any(m.other_number in ("10010", "10000", "10099") for m in calls)
    assert any(m.HasField("forwarded_to") for m in calls)
    crm = Counter(m.WhichOneof("payload") for t, _, m in events if t == "crm.customers.v1")
    assert crm["group_upserted"] == 10
    # one profile each, and a later one for each member of a churning group who leaves it
    profiles = [
        m for t, _, m in events if t == "crm.customers.v1" and m.HasField("customer_upserted")
    ]
    assert len({m.customer_id for m in profiles}) == 2000
    again = profiles[2000:]
    assert again and all(not m.customer_upserted.HasField("group_id") for m in again)
    assert crm["plan_changed"] > 500 and crm["contract_signed"] > 0


def test_customers_have_home_cells_and_outages_name_cells_where_customers_are():
    w = World(Options(customers=2000, seed=5, days=120))
    served = {cell for c in w.customers for cell in c.home_cells}
    assert all(c.home_cells and c.area for c in w.customers)
    events = [e for n in range(120) for e in w.outages(w.o.start + dt.timedelta(days=n))]
    announced = [
        m.outage_announced for t, _, m in events if m.WhichOneof("payload") == "outage_announced"
    ]
    kinds = Counter(a.kind for a in announced)
    assert len(kinds) == 3  # planned cut-overs, upgrades and unplanned outages
    assert all(set(a.cell_ids) & served for a in announced)
    ended = {m.outage_id for _, _, m in events if m.WhichOneof("payload") == "outage_ended"}
    unplanned = {a.outage_id for a in announced if a.kind == 3}
    assert ended == unplanned
    assert w.showcase()["outage"] == announced[0].outage_id


def test_bills_follow_the_calendar():
    w = World(Options(customers=50, seed=5, start=dt.date(2025, 1, 1), days=40))
    list(w.onboarding())
    bills = []
    for n in range(40):
        bills += [
            m
            for t, _, m in w.day(n)
            if t == "billing.accounts.v1" and m.WhichOneof("payload") == "bill_issued"
        ]
    # Billed on the 1st for the month before: 1 January and 1 February in 40 days.
    assert {b.bill_issued.period for b in bills} == {"2024-12", "2025-01"}
    assert len(bills) == 100
    assert all(b.bill_issued.due_on.day == 20 for b in bills)


def test_the_simulator_shares_only_the_generated_contract_with_the_services():
    import pathlib
    import re

    src = pathlib.Path(__file__).resolve().parents[2] / "src"
    imported = set()
    for f in src.rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:from|import) (hvc\.\w+)", f.read_text(), re.M))
    assert imported <= {"hvc.events", "hvc.simulator"}
