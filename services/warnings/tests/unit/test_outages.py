"""Messages to customers in the warnings pipeline: proactive notices and care touches.

Proactive notices (DOMAIN §6) in the warnings pipeline over one partition in memory: an
outage read from network.outages.v1 is copied to every partition; each partition tells its
own high-value customers in the outage's cells and areas, ahead of a planned cut-over and at
once for an unplanned outage, respecting do-not-disturb except for their own services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiokafka.partitioner import murmur2

from hvc.common import monthly, topics
from hvc.common.streams import MemoryPartition, Pipeline, Record
from hvc.events.v1 import (
    benefits_pb2,
    clock_pb2,
    common_pb2,
    customers_pb2,
    notifications_pb2,
    outages_pb2,
    tiering_pb2,
    warnings_pb2,
)
from hvc.warnings import care, streams
from hvc.warnings.domain import notices
from hvc.warnings.domain.rules import DEFAULT_RULES, load_rules
from hvc.warnings.domain.templates import DEFAULT_TEMPLATES, load_templates
from hvc.warnings.outages import FANOUT, OUTAGES, VIEW
from hvc.warnings.pipeline import INPUTS, WarningsHandler

RULES = load_rules(DEFAULT_RULES)
NOTES = "hvc.notifications.v1"
T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
H = dt.timedelta(hours=1)
Kind = outages_pb2.OutageAnnounced.Kind


class Run:
    def __init__(self) -> None:
        handler = WarningsHandler(RULES, 900, 2 * 86_400)
        self.pipeline = Pipeline.of("warnings", INPUTS, handler, clock=True)
        self.part = MemoryPartition()
        self.out: list[tuple[str, str, bytes]] = []
        self.views: list[Any] = []
        self.offset = 0

    def feed(self, topic: str, message: Any, key: str = "k") -> Run:
        self.offset += 1
        record = Record(topic, 0, self.offset, 0, key.encode())
        self.views += self.pipeline.step(
            self.part,
            record,
            message.SerializeToString(),
            lambda t, k, v, h: self.out.append((t, str(k), v)),
        )
        return self

    def at(self, when: dt.datetime) -> Run:
        m = clock_pb2.ClockTicked(source="warnings@test")
        m.occurred_at.FromDatetime(when)
        return self.feed(topics.CLOCK, m)

    def notices(self) -> list[tuple[str, str, str]]:
        """(customer, phase, template) of each notice sent since the last call."""
        got = []
        for t, k, v in self.out:
            if t == "hvc.notifications.v1":
                m = notifications_pb2.NotificationRequested.FromString(v)
                assert m.customer_id == k and m.notification_id == m.event_id
                got.append((m.customer_id, m.params["phase"], m.template))
        self.out = [o for o in self.out if o[0] != "hvc.notifications.v1"]
        return sorted(got)

    def notices_of(self, template: str) -> list[tuple[str, str]]:
        """(customer, notification id) of each message of `template` since the last call."""
        got, rest = [], []
        for t, k, v in self.out:
            m = notifications_pb2.NotificationRequested.FromString(v) if t == NOTES else None
            if m is not None and m.template == template:
                got.append((k, m.notification_id))
            else:
                rest.append((t, k, v))
        self.out = rest
        return sorted(got)

    def callbacks(self) -> dict[str, dict[str, Any]]:
        """The `callbacks` writes since the last call, by id (the last of each)."""
        got = {v.id: dict(v.doc) for v in self.views if v.collection == "callbacks"}
        self.views = [v for v in self.views if v.collection != "callbacks"]
        return got

    def report(self, outage: str) -> dict[str, Any]:
        docs = [v.doc for v in self.views if v.collection == VIEW and v.id == f"{outage} 000"]
        return dict(docs[-1])

    def contacts(self) -> dict[str, dict[str, Any]]:
        return {v.id: dict(v.doc) for v in self.views if v.collection == "contacts"}


def customer(
    cid: str, tier: int, cells: list[str], area: str = "", dnd: bool = False
) -> list[tuple[str, Any]]:
    p = customers_pb2.CustomerEvent(event_id=f"p-{cid}-{'-'.join(cells)}", customer_id=cid)
    p.occurred_at.FromDatetime(T0 - 30 * 24 * H)
    u = p.customer_upserted
    u.name, u.do_not_disturb, u.area_code = f"客户{cid}", dnd, area
    u.home_cell_ids.extend(cells)
    d = tiering_pb2.TierDecided(
        event_id=f"t-{cid}",
        customer_id=cid,
        old_tier=common_pb2.NONE,
        new_tier=tier,
        source=tiering_pb2.TierDecided.ANNUAL,
    )
    d.occurred_at.FromDatetime(T0 - 30 * 24 * H)
    d.effective_from.FromDatetime(T0 - 30 * 24 * H)
    return [("crm.customers.v1", p), ("hvc.tier-decisions.v1", d)]


def announced(
    oid: str,
    kind: int,
    starts: dt.datetime,
    *,
    services: tuple[str, ...] = ("BROADBAND",),
    cells: tuple[str, ...] = ("X1", "X2"),
    areas: tuple[str, ...] = ("0755",),
    at: dt.datetime = T0,
) -> outages_pb2.OutageEvent:
    m = outages_pb2.OutageEvent(event_id=f"a-{oid}-{at:%H%M}", outage_id=oid)
    m.occurred_at.FromDatetime(at)
    a = m.outage_announced
    a.outage_id, a.kind, a.description = oid, kind, "核心网割接"
    a.services.extend(services)
    a.cell_ids.extend(cells)
    a.area_codes.extend(areas)
    a.starts_at.FromDatetime(starts)
    a.ends_at.FromDatetime(starts + 2 * H)
    return m


def ended(oid: str, at: dt.datetime) -> outages_pb2.OutageEvent:
    m = outages_pb2.OutageEvent(event_id=f"e-{oid}", outage_id=oid)
    m.occurred_at.FromDatetime(at)
    m.outage_ended.outage_id = oid
    m.outage_ended.ended_at.FromDatetime(at)
    return m


def population() -> Run:
    r = Run()
    for cid, tier, cells, area, dnd in (
        ("C1", common_pb2.GOLD, ["X1"], "", False),
        ("C2", common_pb2.DIAMOND, ["X2", "X7"], "", True),
        ("C3", common_pb2.NONE, ["X1"], "", False),  # not in the programme
        ("C4", common_pb2.VIP, [], "0755", False),  # by its area
        ("C5", common_pb2.SILVER, ["X9"], "0756", False),  # elsewhere
    ):
        for topic, m in customer(cid, tier, cells, area, dnd):
            r.feed(topic, m, cid)
    r.at(T0 - H)
    return r


def test_an_outage_read_in_one_partition_is_copied_to_every_partition():
    r = Run().feed(OUTAGES, announced("O1", Kind.UNPLANNED, T0))
    copies = [(k, v) for t, k, v in r.out if t == FANOUT]
    assert len(copies) == topics.spec(FANOUT).partitions == 12
    parts = [(murmur2(k.encode()) & 0x7FFFFFFF) % 12 for k, _ in copies]
    assert parts == list(range(12))  # one in each partition, by the producers' partitioner
    assert {outages_pb2.OutageEvent.FromString(v).outage_id for _, v in copies} == {"O1"}
    assert r.notices() == []  # decided where the copies arrive


def test_a_redelivered_announcement_plans_nothing_again():
    """The outage as the state keeps it went through JSON (a list where the outage has a
    tuple): compared as such, a redelivered copy is known, and its report is not counted
    again with the tiers of now."""
    r = population()
    r.feed(FANOUT, announced("O1", Kind.PLANNED_CUTOVER, T0 + 48 * H))
    assert r.report("O1")["affected"] == 3
    for topic, m in customer("C3", common_pb2.GOLD, ["X1"]):  # upgraded since
        m.event_id += "-later"
        r.feed(topic, m, "C3")
    r.feed(FANOUT, announced("O1", Kind.PLANNED_CUTOVER, T0 + 48 * H))  # redelivered
    assert r.report("O1")["affected"] == 3


def test_a_planned_cutover_is_announced_24_and_1_hours_ahead_to_the_high_value_customers():
    r = population()
    r.feed(FANOUT, announced("O1", Kind.PLANNED_CUTOVER, T0 + 48 * H))
    assert r.notices() == []
    report = r.report("O1")
    assert report["affected"] == 3  # C1 and C2 by their cells, C4 by its area; not C3, C5
    assert {p: v["state"] for p, v in report["phases"].items()} == {
        "before-24h": "PLANNED",
        "before-1h": "PLANNED",
    }
    r.at(T0 + 24 * H - dt.timedelta(minutes=2))
    assert r.notices() == []
    r.at(T0 + 24 * H + dt.timedelta(minutes=1))
    # C2 asked not to be disturbed and broadband is not one of its own services.
    assert r.notices() == [
        ("C1", "before-24h", "outage-planned"),
        ("C4", "before-24h", "outage-planned"),
    ]
    r.feed(FANOUT, announced("O1", Kind.PLANNED_CUTOVER, T0 + 48 * H))  # redelivered
    r.at(T0 + 47 * H + dt.timedelta(minutes=1))
    assert r.notices() == [
        ("C1", "before-1h", "outage-planned"),
        ("C4", "before-1h", "outage-planned"),
    ]
    report = r.report("O1")
    assert report["counts"] == {"sent": 4, "suppressed:DO_NOT_DISTURB": 2}
    assert report["phases"]["before-1h"] == {
        "due_at": (T0 + 47 * H).isoformat(),
        "state": "SENT",
        "sent": 2,
    }
    contact = r.contacts()["notice|O1|C1|before-24h"]
    assert contact["kind"] == "NOTICE" and contact["direction"] == "OUTBOUND"
    # The Chinese text, in local time: 2026-06-03 02:00 UTC is 10:00 in Shanghai.
    text = contact["content"]
    assert text.startswith("尊敬的客户") and text.endswith("敬请谅解。")
    for part in ("因网络割接", "6月3日 10:00至6月3日 12:00期间", "的宽带业务将受影响"):
        assert part in text, (part, text)


def test_an_unplanned_outage_of_their_own_service_reaches_dnd_customers_at_once_and_at_its_end():
    r = population()
    r.feed(FANOUT, announced("O2", Kind.UNPLANNED, T0 - H, services=("VOICE",)))
    assert r.notices() == [
        ("C1", "started", "outage-unplanned"),
        ("C2", "started", "outage-unplanned"),  # DND, but its own voice service
        ("C4", "started", "outage-unplanned"),
    ]
    r.feed(FANOUT, ended("O2", T0 + H))
    r.feed(FANOUT, ended("O2", T0 + H))  # redelivered
    assert [n[1:] for n in r.notices()] == [("ended", "outage-ended")] * 3
    assert r.report("O2")["phases"]["ended"]["state"] == "SENT"


def test_a_late_upgrade_in_force_at_the_outage_sends_its_notice_then():
    r = population()
    r.feed(FANOUT, announced("O9", Kind.UNPLANNED, T0, services=("VOICE",), areas=()))
    assert ("C3", "started", "outage-unplanned") not in r.notices()  # NONE, as far as known
    d = tiering_pb2.TierDecided(
        event_id="t-C3-late",
        customer_id="C3",
        old_tier=common_pb2.NONE,
        new_tier=common_pb2.SILVER,
        source=tiering_pb2.TierDecided.PLAN,
    )
    d.occurred_at.FromDatetime(T0 + H)
    d.effective_from.FromDatetime(T0 - 2 * H)
    r.feed("hvc.tier-decisions.v1", d, "C3")
    assert r.notices() == [("C3", "started", "outage-unplanned")]
    assert r.report("O9")["phases"]["started"]["sent"] == 3  # C1, C2 at once; C3 late
    r.feed("hvc.tier-decisions.v1", d, "C3")
    assert r.notices() == []


def _decided(
    cid: str, old: int, tier: int, effective: dt.datetime, n: int = 1
) -> tiering_pb2.TierDecided:
    d = tiering_pb2.TierDecided(
        event_id=f"t-{cid}-{n}",
        customer_id=cid,
        old_tier=old,
        new_tier=tier,
        source=tiering_pb2.TierDecided.PLAN,
    )
    d.occurred_at.FromDatetime(T0 + H)
    d.effective_from.FromDatetime(effective)
    return d


def test_an_outages_report_is_the_same_whether_a_decision_came_before_its_copy_or_after():
    """Tiering publishes at its own pace: a decision in force at the announcement may reach
    the partition after the outage's copy (the fault suite's two-replica run counted fewer
    affected customers than the fault-free one when tiering was restarted). The report
    ends the same either way: its `affected`, its counts and its phases."""
    upgrade = _decided("C3", common_pb2.NONE, common_pb2.SILVER, T0 - 2 * H)
    for kind, starts in ((Kind.UNPLANNED, T0), (Kind.PLANNED_CUTOVER, T0 + 48 * H)):
        early, late = population(), population()
        outage = announced("O9", kind, starts, services=("VOICE",), areas=())
        early.feed("hvc.tier-decisions.v1", upgrade, "C3").feed(FANOUT, outage)
        late.feed(FANOUT, outage).feed("hvc.tier-decisions.v1", upgrade, "C3")
        late.feed("hvc.tier-decisions.v1", upgrade, "C3")  # redelivered: counted once
        for r in (early, late):
            r.at(T0 + 47 * H + dt.timedelta(minutes=1))
        assert late.report("O9") == early.report("O9"), kind
        assert early.report("O9")["affected"] == 3, kind  # C1, C2 by their cells; C3 now too
        assert late.notices() == early.notices(), kind


def test_a_late_decision_moves_the_affected_count_of_the_outages_where_the_customer_is():
    """A notice sent is not taken back, but the report's count of the high-value customers
    the outage concerned follows the decisions; another customer's decision, or one in
    force only after the announcement, moves nothing."""
    r = population()
    r.feed(FANOUT, announced("O9", Kind.UNPLANNED, T0, services=("VOICE",), areas=()))
    assert r.report("O9")["affected"] == 2
    r.feed(
        "hvc.tier-decisions.v1", _decided("C1", common_pb2.GOLD, common_pb2.GOLD, T0 + H, 2), "C1"
    )
    r.feed(
        "hvc.tier-decisions.v1", _decided("C5", common_pb2.SILVER, common_pb2.NONE, T0 - H, 2), "C5"
    )
    assert r.report("O9")["affected"] == 2
    r.feed(
        "hvc.tier-decisions.v1", _decided("C1", common_pb2.GOLD, common_pb2.NONE, T0 - H, 3), "C1"
    )
    report = r.report("O9")
    assert report["affected"] == 1
    assert report["counts"]["sent"] == 2
    # Announced again elsewhere: counted there, and no longer moved by its old cells' decisions.
    moved = announced("O9", Kind.UNPLANNED, T0, services=("VOICE",), cells=("X9",), areas=())
    moved.event_id += "-moved"
    moved.outage_announced.description = "改在X9"
    r.feed(FANOUT, moved)
    assert r.report("O9")["affected"] == 0  # C5, out of the programme by its decision
    back = _decided("C5", common_pb2.NONE, common_pb2.SILVER, T0 - H / 2, 3)
    r.feed("hvc.tier-decisions.v1", back, "C5")
    assert r.report("O9")["affected"] == 1
    r.feed("hvc.tier-decisions.v1", _decided("C1", common_pb2.NONE, common_pb2.GOLD, T0, 4), "C1")
    assert r.report("O9")["affected"] == 1


def test_announced_late_the_latest_notice_due_goes_at_once_and_an_end_cancels_the_rest():
    r = population()
    r.feed(FANOUT, announced("O3", Kind.UPGRADE, T0 + 2 * H, cells=("X1",), areas=()))
    assert r.notices() == [("C1", "before-24h", "outage-planned")]  # now, then 1 h before
    r.feed(FANOUT, announced("O4", Kind.UPGRADE, T0 + H / 2, cells=("X1",), areas=()))
    assert r.notices() == [("C1", "before-1h", "outage-planned")]
    assert r.report("O4")["phases"]["before-24h"]["state"] == "SKIPPED"
    r.feed(FANOUT, ended("O3", T0 + H / 2))  # ended (called off) before its 1 h notice
    r.at(T0 + 3 * H)
    assert r.notices() == []
    assert r.report("O3")["phases"]["before-1h"]["state"] == "OUTAGE_ENDED"


def test_a_copy_arriving_after_its_notices_were_due_sends_each_as_of_its_due_time():
    """The partition's time runs ahead of an outage's copy by however long the fan-out took
    (other inputs' records move it meanwhile): the notices are planned as of the
    announcement, so what is sent does not depend on how fast that hop was (the fault
    suite at a 50 ms poll lost 24-hour notices: planned as of the partition's time, they
    were skipped as past)."""
    r = population()
    r.at(T0 + 47 * H + dt.timedelta(minutes=30))  # past both notices' dues
    # Both fire with the copy itself (the partition's next record may never come: the
    # fault suite lost the notices of copies that came with a feed's last records).
    r.feed(FANOUT, announced("O1", Kind.PLANNED_CUTOVER, T0 + 48 * H))
    report = r.report("O1")
    assert report["affected"] == 3
    assert {p: v["state"] for p, v in report["phases"].items()} == {
        "before-24h": "SENT",
        "before-1h": "SENT",
    }
    assert r.notices() == [
        ("C1", "before-1h", "outage-planned"),
        ("C1", "before-24h", "outage-planned"),
        ("C4", "before-1h", "outage-planned"),
        ("C4", "before-24h", "outage-planned"),
    ]
    contacts = r.contacts()
    assert contacts["notice|O1|C1|before-24h"]["at"] == T0 + 24 * H
    assert contacts["notice|O1|C1|before-1h"]["at"] == T0 + 47 * H


def test_an_end_after_a_notice_was_due_leaves_it_to_be_sent():
    """An end arriving before the timer of a notice due before the end fired (the copy came
    late) does not cancel that notice; it cancels those due after the end."""
    r = population()
    r.feed(FANOUT, announced("O3", Kind.UPGRADE, T0 + 30 * H, cells=("X1",), areas=()))
    assert r.notices() == []
    r.feed(FANOUT, ended("O3", T0 + 25 * H))  # arrives with the partition at T0 + 25 h
    r.at(T0 + 30 * H)
    assert r.notices() == [("C1", "before-24h", "outage-planned")]  # due at T0 + 6 h
    phases = r.report("O3")["phases"]
    assert phases["before-24h"]["state"] == "SENT"
    assert phases["before-1h"]["state"] == "OUTAGE_ENDED"


def test_a_customer_who_moved_is_looked_up_where_it_is_now():
    r = population()
    for topic, m in customer("C1", common_pb2.GOLD, ["X3"]):  # a later profile: cell X3
        m.occurred_at.FromDatetime(T0 - 2 * H)
        r.feed(topic, m, "C1")
    r.feed(FANOUT, announced("O5", Kind.UNPLANNED, T0, cells=("X1",), areas=()))
    assert r.notices() == []
    r.feed(FANOUT, announced("O6", Kind.UNPLANNED, T0, cells=("X3",), areas=()))
    assert r.notices() == [("C1", "started", "outage-unplanned")]


def test_an_areas_customers_are_indexed_in_small_lists_and_all_found():
    """Each profile reads and writes the list of its area it joins: a list per area would
    make a profile cost the size of its area in the partition, and the checkpoint's
    changelog carry all of it."""
    r = Run()
    ids = [f"A{n:04d}" for n in range(2_000)]
    for cid in ids:
        for topic, m in customer(cid, common_pb2.GOLD, [], "0755"):
            r.feed(topic, m, cid)
    lists = {k: r.part.kv.get(k) for k in r.part.kv if k.startswith("area:")}
    assert sum(len(v) for v in lists.values()) == len(ids)
    assert max(len(v) for v in lists.values()) <= 40  # 2,000 over 256 lists: about 8 each
    r.at(T0 - H)
    r.feed(FANOUT, announced("O1", Kind.UNPLANNED, T0, cells=(), areas=("0755",)))
    assert r.report("O1")["affected"] == len(ids)


def test_an_area_indexed_in_one_list_by_an_earlier_release_is_still_read_and_left():
    r = population()
    for topic, m in customer("C6", common_pb2.GOLD, [], "0757"):
        r.feed(topic, m, "C6")
    # The index as states before the buckets kept it: the area's ids in one list.
    (bucket,) = [k for k in r.part.kv if k.startswith("area:0757:")]
    r.part.kv.delete(bucket)
    r.part.kv.set("area:0757", ["C6"])
    r.feed(FANOUT, announced("O1", Kind.UNPLANNED, T0, cells=(), areas=("0757",)))
    assert r.notices() == [("C6", "started", "outage-unplanned")]
    for topic, m in customer("C6", common_pb2.GOLD, [], "0756"):  # moved: out of 0757's
        m.event_id += "-moved"
        m.occurred_at.FromDatetime(T0 - 2 * H)
        r.feed(topic, m, "C6")
    assert [k for k in r.part.kv if k.startswith("area:0757")] == []  # the old list too
    r.feed(FANOUT, announced("O2", Kind.UNPLANNED, T0, cells=(), areas=("0757",)))
    assert r.notices() == []


def test_an_outage_without_place_or_start_is_dead_lettered():
    r = population()
    bad = announced("O7", Kind.UNPLANNED, T0, cells=(), areas=())
    r.feed(FANOUT, bad)
    assert [t for t, _, _ in r.out] == [FANOUT + ".dlq"]
    assert r.notices() == []


def test_an_end_before_its_announcement_tells_nobody():
    r = population()
    r.feed(FANOUT, ended("O8", T0))
    r.feed(FANOUT, announced("O8", Kind.UNPLANNED, T0 - H))
    assert r.notices() == []
    assert r.report("O8")["ended_at"] == T0.isoformat()
    assert [t for t, _, _ in r.out if t.endswith(".dlq")] == []


def test_notice_rules():
    rules = notices.NoticeRules(lead_hours=(1, 24))
    assert rules.lead_hours == (24, 1)
    assert notices.plan({"a": 5, "b": 10, "c": 20}, 12) == (["b"], ["a"], {"c": 20})


# -- care touches (hvc.warnings.care): the same pipeline's other messages to customers ------


def born(cid: str, birthday: dt.date, tier: int, dnd: bool = False) -> list[tuple[str, Any]]:
    events = customer(cid, tier, ["X1"], dnd=dnd)
    p = events[0][1]
    p.customer_upserted.birthday.CopyFrom(
        common_pb2.Date(year=birthday.year, month=birthday.month, day=birthday.day)
    )
    return events


def grant(
    cid: str, gid: str, valid_to: dt.datetime, quantity: int = 2
) -> benefits_pb2.BenefitEvent:
    m = benefits_pb2.BenefitEvent(event_id=f"g-{gid}", customer_id=cid)
    m.occurred_at.FromDatetime(T0)
    g = m.benefit_granted
    g.grant_id, g.code, g.quantity, g.tier = gid, "AIRPORT_LOUNGE", quantity, common_pb2.GOLD
    g.valid_from.FromDatetime(T0)
    g.valid_to.FromDatetime(valid_to)
    return m


def claimed(cid: str, gid: str, n: int) -> benefits_pb2.BenefitEvent:
    m = benefits_pb2.BenefitEvent(event_id=f"c-{gid}-{n}", customer_id=cid)
    m.occurred_at.FromDatetime(T0)
    c = m.benefit_claimed
    c.grant_id, c.code, c.quantity, c.tier = gid, "AIRPORT_LOUNGE", 1, common_pb2.GOLD
    return m


def test_a_birthday_greeting_at_nine_on_the_day_every_year_not_to_dnd_nor_outside_the_programme():
    r = Run()
    for cid, tier, dnd in (
        ("B1", common_pb2.GOLD, False),
        ("B2", common_pb2.GOLD, True),
        ("B3", common_pb2.NONE, False),
    ):
        for topic, m in born(cid, dt.date(1980, 6, 3), tier, dnd):
            r.feed(topic, m, cid)
    r.at(T0)  # 1 June 2026
    r.at(dt.datetime(2026, 6, 3, 0, 59, tzinfo=dt.UTC))  # 08:59 in Shanghai
    assert r.notices_of("birthday") == []
    r.at(dt.datetime(2026, 6, 3, 1, 1, tzinfo=dt.UTC))
    assert r.notices_of("birthday") == [("B1", "care|birthday|B1|2026-06-03")]
    r.at(dt.datetime(2027, 6, 3, 1, 1, tzinfo=dt.UTC))  # and the next year
    assert r.notices_of("birthday") == [("B1", "care|birthday|B1|2027-06-03")]
    withheld = [monthly.counts_of(v.doc) for v in r.views if v.collection == "care_monthly"]
    assert any("withheld|birthday|DO_NOT_DISTURB" in c for c in withheld)


def test_a_managers_contact_recorded_over_http_withholds_a_touch_within_seven_days():
    """The contact cap both ways: the HTTP side refuses a manager's call within 7 days of a
    touch (its contact history has the touch), and the pipeline, told of a manager's call
    (ContactLogged on hvc.warnings.v1), withholds the touch within 7 days of it."""
    r = Run()
    for cid in ("M1", "M2"):
        for topic, m in born(cid, dt.date(1980, 6, 3), common_pb2.GOLD):
            r.feed(topic, m, cid)
    r.at(T0)  # 1 June 2026
    call = warnings_pb2.WarningEvent(event_id="contact-c1", customer_id="M1")
    call.occurred_at.FromDatetime(dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC))
    c = call.contact_logged
    c.contact_id, c.channel, c.direction, c.kind = "c1", "PHONE", "OUTBOUND", "CONTACT"
    c.at.FromDatetime(dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC))
    r.feed("hvc.warnings.v1", call, "M1")
    inbound = warnings_pb2.WarningEvent(event_id="contact-c2", customer_id="M2")
    inbound.CopyFrom(call)
    inbound.event_id, inbound.customer_id = "contact-c2", "M2"
    inbound.contact_logged.direction = "INBOUND"  # the customer called: no cap
    r.feed("hvc.warnings.v1", inbound, "M2")
    r.at(dt.datetime(2026, 6, 3, 1, 1, tzinfo=dt.UTC))
    assert r.notices_of("birthday") == [("M2", "care|birthday|M2|2026-06-03")]
    withheld = [monthly.counts_of(v.doc) for v in r.views if v.collection == "care_monthly"]
    assert any("withheld|birthday|FREQUENCY_CAP" in counts for counts in withheld)


def test_a_late_upgrade_in_force_at_the_birthday_sends_the_greeting_then():
    r = Run()
    events = born("L1", dt.date(1980, 6, 3), common_pb2.NONE)
    for topic, m in events:
        r.feed(topic, m, "L1")
    r.at(dt.datetime(2026, 6, 3, 2, 0, tzinfo=dt.UTC))
    assert r.notices_of("birthday") == []  # not in the programme, as far as is known
    d = tiering_pb2.TierDecided(
        event_id="t-L1-late",
        customer_id="L1",
        old_tier=common_pb2.NONE,
        new_tier=common_pb2.GOLD,
        source=tiering_pb2.TierDecided.PLAN,
    )
    d.occurred_at.FromDatetime(dt.datetime(2026, 6, 3, 2, 5, tzinfo=dt.UTC))
    d.effective_from.FromDatetime(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # in force by then
    r.feed("hvc.tier-decisions.v1", d, "L1")
    assert r.notices_of("birthday") == [("L1", "care|birthday|L1|2026-06-03")]
    r.feed("hvc.tier-decisions.v1", d, "L1")  # redelivered
    assert r.notices_of("birthday") == []


def test_touches_decided_late_are_capped_as_of_their_occasions():
    """Three touches withheld for want of a tier (a birthday, two benefit reminders 5 and 10
    days later), then a decision in force by all of them: sent as if it had come in time, the
    cap counted in the occasions' time (the birthday and the one 10 days on; not the one 5
    days on), whatever the time it came."""
    r = Run()
    for topic, m in born("LL", dt.date(1980, 6, 3), common_pb2.NONE):
        r.feed(topic, m, "LL")
    r.at(T0)
    nine = dt.datetime(2026, 6, 3, 1, 0, tzinfo=dt.UTC)
    r.feed("hvc.benefits.v1", grant("LL", "A", nine + 12 * 24 * H), "LL")  # reminder: 8 June
    r.feed("hvc.benefits.v1", grant("LL", "B", nine + 17 * 24 * H), "LL")  # reminder: 13 June
    r.at(dt.datetime(2026, 7, 1, tzinfo=dt.UTC))  # a month on: still no tier known
    assert r.notices_of("birthday") == [] and r.notices_of("benefit-expiry") == []
    d = tiering_pb2.TierDecided(
        event_id="t-LL",
        customer_id="LL",
        old_tier=common_pb2.NONE,
        new_tier=common_pb2.GOLD,
        source=tiering_pb2.TierDecided.PLAN,
    )
    d.occurred_at.FromDatetime(dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    d.effective_from.FromDatetime(dt.datetime(2026, 5, 10, tzinfo=dt.UTC))
    r.feed("hvc.tier-decisions.v1", d, "LL")
    assert r.notices_of("birthday") == [("LL", "care|birthday|LL|2026-06-03")]
    assert r.notices_of("benefit-expiry") == [("LL", "care|benefit-expiry|LL|B")]


def test_an_unused_benefit_is_reminded_of_before_it_ends_a_used_one_is_not():
    r = Run()
    for topic, m in customer("G1", common_pb2.GOLD, ["X1"]):
        r.feed(topic, m, "G1")
    r.at(T0)
    end = T0 + 30 * 24 * H
    r.feed("hvc.benefits.v1", grant("G1", "L1", end), "G1")
    r.feed("hvc.benefits.v1", grant("G1", "L2", end + 10 * 24 * H, quantity=1), "G1")
    r.feed("hvc.benefits.v1", claimed("G1", "L2", 1), "G1")  # used up
    r.feed("hvc.benefits.v1", claimed("G1", "L1", 1), "G1")
    r.feed("hvc.benefits.v1", claimed("G1", "L1", 1), "G1")  # redelivered: one use
    r.at(end - 7 * 24 * H - H)
    assert r.notices_of("benefit-expiry") == []
    r.at(end - 7 * 24 * H + dt.timedelta(minutes=2))
    [(cid, nid)] = r.notices_of("benefit-expiry")
    assert (cid, nid) == ("G1", "care|benefit-expiry|G1|L1")
    text = r.contacts()[nid]["content"]
    assert "机场贵宾厅" in text and "1次" in text
    r.at(end + 20 * 24 * H)
    assert r.notices_of("benefit-expiry") == []


def test_touches_count_against_each_other_one_per_seven_days():
    r = Run()
    for topic, m in born("F1", dt.date(1990, 6, 5), common_pb2.GOLD):
        r.feed(topic, m, "F1")
    r.at(T0)
    r.feed("hvc.benefits.v1", grant("F1", "L9", T0 + 9 * 24 * H), "F1")  # reminder on 3 June
    r.at(dt.datetime(2026, 6, 10, tzinfo=dt.UTC))
    assert r.notices_of("benefit-expiry") == [("F1", "care|benefit-expiry|F1|L9")]
    assert r.notices_of("birthday") == []  # 5 June: two days after the reminder
    counts = {
        k for v in r.views if v.collection == "care_monthly" for k in monthly.counts_of(v.doc)
    }
    assert "withheld|birthday|FREQUENCY_CAP" in counts


def test_care_dates_and_templates():
    assert care.next_birthday(dt.date(1992, 2, 29), dt.date(2027, 1, 1)) == dt.date(2027, 2, 28)
    assert care.next_birthday(dt.date(1992, 2, 29), dt.date(2028, 1, 1)) == dt.date(2028, 2, 29)
    assert care.next_birthday(dt.date(1990, 1, 5), dt.date(2026, 6, 1)) == dt.date(2027, 1, 5)
    t = load_templates(DEFAULT_TEMPLATES)
    at = "2026-06-01T02:00:00+00:00"
    en = t.render("outage-ended", {"services": "VOICE,DATA", "ended_at": at}, RULES.zone, "en")
    assert "voice, data" in en and "06-01 10:00" in en
    zh = t.render("outage-planned", {"kind": "UPGRADE", "services": "SMS"}, RULES.zone)
    assert "系统升级" in zh and "{starts_at}" in zh and "短信" in zh  # a missing parameter shows


# -- quarterly callbacks (hvc.warnings.callbacks) ----------------------------------------------


def test_each_quarter_a_callback_for_diamond_platinum_and_key_persons_on_their_managers_list():
    r = Run()
    for cid, tier in (
        ("Q1", common_pb2.DIAMOND),
        ("Q2", common_pb2.GOLD),
        ("Q3", common_pb2.PLATINUM),
    ):
        events = customer(cid, tier, ["X1"])
        events[0][1].customer_upserted.manager_id = "M1" if cid != "Q3" else ""
        if cid == "Q3":
            events[0][1].customer_upserted.ClearField("manager_id")
        for topic, m in events:
            r.feed(topic, m, cid)
    key = customer("Q4", common_pb2.GOLD, ["X1"])
    key[0][1].customer_upserted.is_key_person = True
    key[0][1].customer_upserted.manager_id = "M2"
    for topic, m in key:
        r.feed(topic, m, "Q4")
    docs = r.callbacks()
    assert sorted(docs) == ["CB-2026Q2-Q1", "CB-2026Q2-Q3", "CB-2026Q2-Q4"]  # not Q2 (GOLD)
    q1 = docs["CB-2026Q2-Q1"]
    assert (q1["manager_id"], q1["reason"], q1["status"]) == ("M1", "TIER", "OPEN")
    assert q1["planned_on"] == "2026-05-02"  # from the day it became due (mid-quarter)
    assert q1["due_at"] == dt.datetime(2026, 6, 30, 16, 0, tzinfo=dt.UTC)  # 1 July, local
    assert docs["CB-2026Q2-Q4"]["reason"] == "KEY_PERSON"
    assert docs["CB-2026Q2-Q3"]["manager_id"] is None
    later = customer("Q3", common_pb2.PLATINUM, ["X1", "X2"])[0][1]
    later.customer_upserted.manager_id = "M9"
    later.occurred_at.FromDatetime(T0 - 29 * 24 * H)
    r.feed("crm.customers.v1", later, "Q3")
    assert r.callbacks()["CB-2026Q2-Q3"]["manager_id"] == "M9"  # set on the planned one
    r.at(dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.UTC))  # the third quarter starts
    q3 = r.callbacks()
    assert sorted(q3) == ["CB-2026Q3-Q1", "CB-2026Q3-Q3", "CB-2026Q3-Q4"]
    assert "2026-07-01" <= q3["CB-2026Q3-Q1"]["planned_on"] <= "2026-07-07"
    assert q3["CB-2026Q3-Q3"]["manager_id"] == "M9"


# -- group warnings (hvc.warnings.groups) --------------------------------------------------


def test_three_members_of_a_group_warned_in_a_month_warn_the_group_once():
    r = Run()
    for i in range(1, 5):
        cid = f"GM{i}"
        events = customer(cid, common_pb2.GOLD, ["X1"])
        events[0][1].customer_upserted.group_id = "G1"
        events[0][1].customer_upserted.manager_id = "M1" if i != 2 else "M2"
        for topic, m in events:
            r.feed(topic, m, cid)
    for i in range(1, 5):
        ask = customers_pb2.CustomerEvent(event_id=f"po-{i}", customer_id=f"GM{i}")
        ask.occurred_at.FromDatetime(T0 + i * H)
        ask.port_out_requested.kind = customers_pb2.PortOutRequested.AUTH_CODE
        r.feed("crm.customers.v1", ask, f"GM{i}")
    signals = [(k, v) for t, k, v in r.out if t == topics.GROUP_SIGNALS]
    assert [k for k, _ in signals] == ["G1"] * 4  # keyed by the group: its partition
    r.out = []
    for k, v in [*signals, signals[0]]:  # one redelivered
        r.feed(topics.GROUP_SIGNALS, warnings_pb2.GroupSignalEvent.FromString(v), k)
    raised = [
        warnings_pb2.WarningEvent.FromString(v) for t, _, v in r.out if t == "hvc.warnings.v1"
    ]
    assert [(m.customer_id, m.warning_raised.period) for m in raised] == [("G1", "2026-06")]
    w = raised[0].warning_raised
    assert w.code == warnings_pb2.WarningRaised.GROUP_MEMBER_CHURN and w.level == 1
    assert dict(w.evidence.figures) == {"members_warned": 3}
    tasks = {
        v.id: v.doc
        for v in r.views
        if v.collection == "tasks" and v.mode == "insert" and v.doc["customer_id"] == "G1"
    }
    [task] = tasks.values()
    assert task["manager_id"] == "M1"  # the manager most of the members warned have
    staff = [t for t, k, _ in r.out if t == topics.STAFF_NOTIFICATIONS]
    assert staff == [topics.STAFF_NOTIFICATIONS]  # level 1: the manager is told
    assert not [t for t, _, _ in r.out if t == topics.GROUP_SIGNALS]  # no signal of its own


def test_the_tier_in_force_at_an_instant_whatever_order_the_decisions_came_in():
    def decided(tier: int, effective: dt.datetime) -> tiering_pb2.TierDecided:
        d = tiering_pb2.TierDecided(event_id=f"t-{tier}", customer_id="C", new_tier=tier)
        d.effective_from.FromDatetime(effective)
        return d

    jan, jul = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    for order in ((jan, jul), (jul, jan)):
        state: dict[str, Any] = {}
        tiers = streams.Tiers(RULES, 900)
        for when in order:
            tiers.apply(decided(common_pb2.GOLD if when == jan else common_pb2.NONE, when), state)
        assert streams.tier_at(state, ms(jan) - 1) == "NONE"  # before any decision
        assert streams.tier_at(state, ms(jan) + 1) == "GOLD"
        assert streams.tier_at(state, ms(jul) + 1) == "NONE"  # a downgrade from July on
        assert state["tier"] == "NONE"  # the latest in force
