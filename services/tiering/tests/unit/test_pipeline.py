"""The tiering pipeline on hvc.common.streams without a broker: decisions from the facts in the
customer's state, groups repartitioned to their key people through the commands topic,
overrides and annual results as commands, bills kept without a decision, and redelivery."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hvc.common import monthly
from hvc.common.streams import MemoryPartition, Pipeline, Record
from hvc.common.topics import GROUP_FILES, TIERING_COMMANDS
from hvc.events.v1 import accounts_pb2, common_pb2, customers_pb2, tiering_pb2
from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
from hvc.tiering.pipeline import ACCOUNTS, CUSTOMERS, INPUTS, TieringHandler

BOOK = load_rulebook([DEFAULT_RULESETS])
UTC = dt.UTC


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


class Run:
    """The pipeline over partitions in memory, one per key as the broker would spread them
    (what matters here: a group's state and a member's are apart); the commands it sends to
    itself are fed back, as the broker would deliver them."""

    def __init__(self) -> None:
        self.pipeline = Pipeline.of("tiering", INPUTS, TieringHandler(BOOK))
        self.parts: dict[str, MemoryPartition] = {}
        self.decided: list[tiering_pb2.TierDecided] = []
        self.views: list[Any] = []
        self.offset = 0
        self.ts = int(at("2026-01-01T00:00:00").timestamp() * 1000)
        self.pending: list[tuple[str, str, bytes]] = []
        self.files: list[tiering_pb2.GroupFiled] = []

    def part(self, key: str) -> MemoryPartition:
        return self.parts.setdefault(key, MemoryPartition())

    def feed(self, *events: tuple[str, str, Any]) -> list[str]:
        """(topic, key, message) records, then the commands they cause; the decisions made."""
        before = len(self.decided)
        queue = [(t, k, m.SerializeToString()) for t, k, m in events]
        while queue:
            topic, key, value = queue.pop(0)
            self.offset += 1
            self.ts += 1000
            record = Record(topic, 0, self.offset, self.ts, key.encode())
            out: list[tuple[str, str, bytes]] = []
            views = self.pipeline.step(self.part(key), record, value, _into(out))
            for v in views:
                assert not _nested_arrays(v.doc), (v.collection, v.doc)  # the local store
            self.views += views
            for t, k, v in out:
                assert not t.endswith(".dlq"), t
                if t == TIERING_COMMANDS:
                    queue.append((t, k, v))
                elif t == GROUP_FILES:
                    self.files.append(tiering_pb2.GroupFiled.FromString(v))
                else:
                    assert t == "hvc.tier-decisions.v1"
                    self.decided.append(tiering_pb2.TierDecided.FromString(v))
        return [
            f"{common_pb2.Tier.Name(d.old_tier)}>{common_pb2.Tier.Name(d.new_tier)}"
            for d in self.decided[before:]
        ]

    def view(self, collection: str) -> dict[str, Any]:
        return {v.id: v.doc for v in self.views if v.collection == collection}


def _nested_arrays(v: Any, in_array: bool = False) -> bool:
    """An array directly in an array: FerretDB v1 (the local store) refuses the document."""
    if isinstance(v, dict):
        return any(_nested_arrays(x) for x in v.values())
    if isinstance(v, list | tuple):
        return in_array or any(_nested_arrays(x, True) for x in v)
    return False


def _into(out: list[tuple[str, str, bytes]]) -> Any:
    return lambda t, k, v, h: out.append((t, k, v))


def upsert(cid: str, eid: str, when: str, group: str | None = None, key_person=False, manager=None):
    m = customers_pb2.CustomerEvent(event_id=eid, customer_id=cid)
    m.occurred_at.FromDatetime(at(when))
    u = m.customer_upserted
    u.name = "n"
    u.joined_on.CopyFrom(common_pb2.Date(year=2015, month=1, day=1))
    if group:
        u.group_id = group
    if manager:
        u.manager_id = manager
    u.is_key_person = key_person
    return (CUSTOMERS, cid, m)


def plan(cid: str, eid: str, when: str, fee: int):
    m = customers_pb2.CustomerEvent(event_id=eid, customer_id=cid)
    m.occurred_at.FromDatetime(at(when))
    p = m.plan_changed
    p.plan_id, p.monthly_fee_fen, p.gotone = f"P{fee}", fee, True
    p.effective_from.FromDatetime(at(when))
    return (CUSTOMERS, cid, m)


def group(gid: str, eid: str, when: str, handsets: int):
    m = customers_pb2.CustomerEvent(event_id=eid)
    m.occurred_at.FromDatetime(at(when))
    g = m.group_upserted
    g.group_id, g.name, g.sector, g.handsets = gid, "G", "retail", handsets
    return (CUSTOMERS, gid, m)


def bill(cid: str, bill_id: str, period: str, fen: int, when: str):
    m = accounts_pb2.AccountEvent(event_id=f"b-{bill_id}-{when}", customer_id=cid)
    m.occurred_at.FromDatetime(at(when))
    b = m.bill_issued
    b.bill_id, b.period, b.amount_fen, b.countable_fen = bill_id, period, fen, fen
    return (ACCOUNTS, cid, m)


def command(cid: str, eid: str, **payload):
    c = tiering_pb2.TieringCommand(event_id=eid, customer_id=cid, **payload)
    c.occurred_at.FromDatetime(at("2026-01-01T00:00:00"))
    return (TIERING_COMMANDS, cid, c)


def test_a_plan_decides_and_a_redelivery_decides_nothing():
    r = Run()
    feed = [
        upsert("C1", "u1", "2025-03-01T00:00:00"),
        plan("C1", "p1", "2025-03-02T00:00:00", 58_800),
    ]
    assert r.feed(*feed) == ["NONE>DIAMOND"]
    assert r.feed(*feed) == []
    (decision,) = r.decided
    history = r.view("tier_history")
    (doc,) = history.values()
    assert doc["event_id"] == decision.event_id and doc["source"] == "PLAN"
    assert doc["cause"][0] == CUSTOMERS  # the plan's record
    assert r.view("customers")["C1"]["plans"]["p1"]["monthly_fee_fen"] == 58_800
    # Lowered: a second decision; the same plan again: nothing.
    assert r.feed(plan("C1", "p2", "2025-04-01T00:00:00", 18_800)) == ["DIAMOND>SILVER"]
    assert r.feed(plan("C1", "p2", "2025-04-01T00:00:00", 18_800)) == []
    # Each decision counted once, in the month (Shanghai) it takes effect.
    months = {v.id: monthly.counts_of(v.doc) for v in r.views if v.collection == "tiers_monthly"}
    assert months == {
        "2025-03 000": {"move:NONE>DIAMOND": 1, "in:DIAMOND": 1, "out:NONE": 1, "source:PLAN": 1},
        "2025-04 000": {
            "move:DIAMOND>SILVER": 1,
            "in:SILVER": 1,
            "out:DIAMOND": 1,
            "source:PLAN": 1,
        },
    }


def test_bills_are_kept_for_the_annual_run_and_decide_nothing():
    r = Run()
    r.feed(upsert("C1", "u1", "2025-03-01T00:00:00"))
    assert r.feed(bill("C1", "B1", "2025-02", 10_000, "2025-03-01T02:00:00")) == []
    # A re-issue replaces it; an older copy arriving late does not.
    r.feed(bill("C1", "B1", "2025-02", 12_000, "2025-03-02T02:00:00"))
    r.feed(bill("C1", "B1", "2025-02", 10_000, "2025-03-01T02:00:00"))
    # Each bill is a document of its own in the `ledger` view: inserted, then replaced by the
    # re-issue; the late copy writes nothing. The customer's document holds no bills.
    ledger = [
        (v.id, v.mode, v.doc and v.doc["amount_fen"]) for v in r.views if v.collection == "ledger"
    ]
    assert ledger == [("C1 b B1", "insert", 10_000), ("C1 b B1", "replace", 12_000)]
    assert "bills" not in r.view("customers")["C1"]
    modes = [v.mode for v in r.views if v.collection == "customers"]
    assert modes[0] == "fresh" and set(modes[1:]) <= {"replace"}


def test_bills_older_than_the_years_kept_leave_the_ledger_view():
    r = Run()
    r.feed(bill("C9", "B1", "2022-01", 100, "2022-02-01T00:00:00"))
    # known only by its bill: its `customers` document is written once, with no bills
    assert r.view("customers") == {"C9": {"_id": "C9"}}
    r.feed(bill("C9", "B2", "2024-01", 200, "2024-02-01T00:00:00"))
    # its first document is `fresh` (inserted, replaced only if there after all)
    assert [(v.id, v.mode) for v in r.views if v.collection == "customers"] == [("C9", "fresh")]
    assert sorted(r.view("ledger")) == ["C9 b B1", "C9 b B2"]
    r.feed(bill("C9", "B3", "2025-01", 300, "2025-02-01T00:00:00"))  # 2022 is 3 years back
    assert r.view("ledger")["C9 b B1"] is None
    assert r.view("ledger")["C9 b B3"]["countable_fen"] == 300


def test_a_key_person_gets_the_group_tier_whichever_comes_first():
    """The group's snapshot lands on the group's partition, the key person's profile on its
    own: the group shares its snapshots with each member through the commands topic."""
    a, b = Run(), Run()
    profile = upsert("K1", "u1", "2025-03-01T00:00:00", group="G1", key_person=True)
    snapshot = group("G1", "g1", "2025-03-01T01:00:00", handsets=5_000)
    got_a = a.feed(profile, snapshot)
    got_b = b.feed(snapshot, profile)
    assert got_a == got_b and len(got_a) == 1 and got_a[0].startswith("NONE>")
    assert list(a.parts["G1"].load("group|G1")["members"]) == ["K1"]
    assert "group|G1" not in a.parts["K1"].states  # apart, as on the broker
    assert set(a.view("groups")["G1"]["snapshots"]) == {"g1"}
    # A later snapshot that changes the class decides again; the same one again, nothing.
    smaller = group("G1", "g2", "2025-06-01T00:00:00", handsets=10)
    assert a.feed(smaller) != []
    assert a.feed(smaller) == []


def stint(start: str, end: str | None) -> dict[str, Any]:
    return {"from": at(start), "to": None if end is None else at(end)}


def test_a_groups_file_follows_its_members_latest_profiles():
    """Each member's latest profile tells its group (on the group's partition) that it joined,
    that its key-person flag or manager changed, or that it left: the group's file (members,
    key persons, their managers) and each member's stints in the `group_members` view."""
    r = Run()
    r.feed(
        group("G1", "g1", "2025-01-01T00:00:00", handsets=40),
        upsert("K1", "k1", "2025-02-01T00:00:00", group="G1", key_person=True, manager="M1"),
        upsert("C2", "c1", "2025-02-01T00:00:00", group="G1", manager="M1"),
        upsert("C3", "d1", "2025-02-01T00:00:00", group="G1", manager="M2"),
    )
    file = r.view("groups")["G1"]
    assert (file["members"], file["key_persons"], file["managers"]) == (
        3,
        ["K1"],
        [{"id": "M1", "members": 2}, {"id": "M2", "members": 1}],
    )
    assert file["key_person_managers"] == [{"id": "M1", "members": 1}]
    # ... and the file on hvc.group-files.v1, once per change
    last = r.files[-1]
    assert (last.customer_id, last.group_class, last.manager_id, last.complete) == (
        "G1",
        "C",
        "M1",
        True,
    )
    assert len({f.event_id for f in r.files}) == len(r.files)
    # C3 moves to G2 in May; an older profile of it arriving late changes nothing.
    r.feed(upsert("C3", "d2", "2025-05-01T00:00:00", group="G2", manager="M2"))
    r.feed(upsert("C3", "d0", "2025-01-15T00:00:00", group="G1", manager="M2"))
    members = r.view("group_members")
    assert members["G1|C3"]["member"] is False
    assert members["G1|C3"]["stints"] == [stint("2025-02-01T00:00:00", "2025-05-01T00:00:00")]
    assert members["G2|C3"]["stints"] == [stint("2025-05-01T00:00:00", None)]
    assert r.view("groups")["G1"]["members"] == 2
    # K1 is no longer a key person: the file follows; the same profile again sends nothing.
    r.feed(upsert("K1", "k2", "2025-06-01T00:00:00", group="G1", manager="M1"))
    assert r.view("groups")["G1"]["key_persons"] == []
    assert not r.files[-1].complete  # no key person left
    sent, filed = len(r.views), len(r.files)
    r.feed(upsert("K1", "k2", "2025-06-01T00:00:00", group="G1", manager="M1"))
    assert (len(r.views), len(r.files)) == (sent, filed)
    # C3 comes back: a second stint, the first kept.
    r.feed(upsert("C3", "d3", "2025-08-01T00:00:00", group="G1", manager="M2"))
    assert r.view("group_members")["G1|C3"]["stints"] == [
        stint("2025-02-01T00:00:00", "2025-05-01T00:00:00"),
        stint("2025-08-01T00:00:00", None),
    ]
    assert r.view("group_members")["G2|C3"]["member"] is False


def test_a_group_state_kept_before_the_files_is_read_as_members_of_unknown_since():
    r = Run()
    r.part("G1").save("group|G1", {"members": ["C1"], "snapshots": {}})
    r.part("C1").save("C1", {"joined": ["G1"]})
    r.feed(upsert("C1", "c1", "2025-02-01T00:00:00", manager="M1"))  # left G1
    members = r.view("group_members")
    assert members["G1|C1"]["stints"] == [{"from": None, "to": at("2025-02-01T00:00:00")}]
    assert r.view("groups")["G1"]["members"] == 0


def test_overrides_and_annual_results_are_commands_that_decide():
    r = Run()
    r.feed(upsert("C1", "u1", "2025-03-01T00:00:00"))
    o = tiering_pb2.OverrideSet(
        override_id="ovr-1", tier=common_pb2.GOLD, reason="vip", set_by="sup"
    )
    o.set_at.FromDatetime(at("2025-04-01T00:00:00"))
    o.expires_at.FromDatetime(at("2025-05-01T00:00:00"))
    assert r.feed(command("C1", "ovr-1", override_set=o)) == ["NONE>GOLD", "GOLD>NONE"]
    assert r.feed(command("C1", "ovr-1", override_set=o)) == []
    a = tiering_pb2.AnnualAssessed(
        year=2025,
        as_of=common_pb2.Date(year=2026, month=1, day=1),
        ruleset_version="2025.1",
        consumption_points=100,
        tenure_points=10,
        tenure_years=10,
        score=110,
        tier=common_pb2.PLATINUM,
    )
    a.valid_from.FromDatetime(at("2026-01-01T00:00:00"))
    assert r.feed(command("C1", "ann-2025", annual_assessed=a)) == ["NONE>PLATINUM"]
    assert r.feed(command("C1", "ann-2025", annual_assessed=a)) == []
    assert r.parts["C1"].load("C1")["annual"]["2025"]["tier"] == "PLATINUM"
