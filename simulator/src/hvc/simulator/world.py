"""The synthetic operator's customers and what happens to them, day by simulated day.

Pure and deterministic: the same seed and options give the same events with the same ids.
Spreads are plausible, not calibrated: long-tailed bills, a GoTone share with plan fees
around the tier boundaries, a few customers calling rival carriers' service lines or
forwarding calls to rival numbers, late payers and suspensions, contracts ending, port-out
queries, group customers with key persons, and complaints across channels.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.message import Message

from hvc.events.v1 import (
    accounts_pb2,
    calls_pb2,
    care_pb2,
    common_pb2,
    customers_pb2,
    outages_pb2,
    usage_pb2,
)

ZONE = ZoneInfo("Asia/Shanghai")
RIVAL_SERVICE_NUMBERS = ("10010", "10000", "10099")
RIVAL_PREFIXES = ("130", "131", "132", "155", "156", "133", "153", "180", "189")
GOTONE_FEES = (12_800, 18_800, 28_800, 38_800, 58_800)
GOTONE_WEIGHTS = (30, 30, 20, 12, 8)
SECTORS = ("government", "banking", "retail", "manufacturing", "insurance", "education")
CHANNELS = (
    ("BUSINESS_HALL", 25),
    ("HOTLINE_10086", 40),
    ("APP_WEB", 20),
    ("SMS", 8),
    ("CONSUMER_315", 4),
    ("MAYORS_MAILBOX", 2),
    ("MIIT", 1),
)
CATEGORIES = ("billing", "network", "service", "roaming", "value-added")
# Where customers are served: area codes, and cells per area (about 25 customers a cell).
AREAS = ("020", "0755", "0756", "0757", "0760", "0769", "0754", "0751")
CUSTOMERS_PER_CELL = 25
PLANNED_PER_DAY = 0.08  # planned cut-overs and upgrades announced a day
UNPLANNED_PER_DAY = 0.03

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
    "许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = (
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华"
    "玉萍红娥玲芬燕晨宇浩然子轩梓涵欣怡雨婷俊杰思远"
)


def chinese_name(customer_id: str) -> str:
    """A customer's name, the same for the same id whatever the seed (a hash, no draw of the
    world's random stream): a surname and one or two given characters."""
    h = int.from_bytes(hashlib.blake2b(customer_id.encode(), digest_size=8).digest(), "big")
    given = GIVEN[(h >> 8) % len(GIVEN)] + (GIVEN[(h >> 24) % len(GIVEN)] if h % 3 else "")
    return SURNAMES[h % len(SURNAMES)] + given


Event = tuple[str, str, Message]  # topic, key, message
# The envelope message of each topic that carries several kinds (from the contract only).
ENVELOPES: dict[str, type[Message]] = {
    "crm.customers.v1": customers_pb2.CustomerEvent,
    "billing.accounts.v1": accounts_pb2.AccountEvent,
}


@dataclass
class Options:
    customers: int = 10_000
    seed: int = 42
    start: dt.date = dt.date(2025, 1, 1)
    days: int = 400
    usage_per_day: float = 0.3  # expected usage records per customer per day
    calls_per_day: float = 0.2


@dataclass
class Customer:
    customer_id: str
    msisdn: str
    joined_on: dt.date
    birthday: dt.date
    gotone_fee: int | None
    monthly_fen: int
    manager_id: str
    group_id: str | None = None
    key_person: bool = False
    late_payer: float = 0.05
    rival_caller: bool = False
    forwarder: bool = False
    contract_end: dt.date | None = None
    area: str = ""
    home_cells: tuple[str, ...] = ()
    # bill id -> (amount, due date, the day it will be paid or None for never)
    unpaid: dict[str, tuple[int, dt.date, dt.date | None]] = field(default_factory=dict)
    suspended: bool = False
    # Drawn with the first profile, kept by the later ones (a member leaving its group).
    do_not_disturb: bool | None = None
    credit_restore_hours: int = 0


class World:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.counter = 0
        self.customers = [self._customer(i) for i in range(options.customers)]
        self.groups: dict[str, tuple[str, str, int]] = {}
        self._groups()
        # Places and outages draw from a stream of their own: the rest of the world is the
        # same with or without them.
        self.places = random.Random(options.seed + 7919)
        self.cells_per_area = max(2, options.customers // (CUSTOMERS_PER_CELL * len(AREAS)))
        self.outage_count = 0
        for c in self.customers:
            c.area = self.places.choice(AREAS)
            n = self.places.choice((1, 1, 2, 3))
            cells = {
                self.cell(c.area, self.places.randrange(self.cells_per_area)) for _ in range(n)
            }
            c.home_cells = tuple(sorted(cells))
        # Group churn: in one group in ten, half the members start calling rival carriers'
        # service lines (group warnings: several members warned in one month).
        churning = {g for g in sorted(self.groups) if self.places.random() < 0.1}
        for c in self.customers:
            if c.group_id in churning and self.places.random() < 0.5:
                c.rival_caller = True

    # -- population ------------------------------------------------------------------------

    def _customer(self, i: int) -> Customer:
        r = self.rng
        tenure_days = int(min(r.expovariate(1 / 2500), 25 * 365))
        gotone = r.random() < 0.35
        fee = r.choices(GOTONE_FEES, GOTONE_WEIGHTS)[0] if gotone else None
        base = r.lognormvariate(9.4, 0.8)  # fen per month, median ~120 yuan
        if fee:
            base = max(base, fee * r.uniform(0.9, 1.6))
        c = Customer(
            customer_id=f"SIM{i:07d}",
            msisdn=f"1{r.choice('3578')}{r.randrange(10**9):09d}",
            joined_on=self.o.start - dt.timedelta(days=tenure_days),
            birthday=dt.date(r.randrange(1950, 2006), r.randrange(1, 13), r.randrange(1, 29)),
            gotone_fee=fee,
            monthly_fen=int(base),
            manager_id=f"M{i // 400:04d}",
            late_payer=r.choice((0.02, 0.02, 0.05, 0.3)),
            rival_caller=r.random() < 0.03,
            forwarder=r.random() < 0.01,
        )
        if r.random() < 0.2:
            c.contract_end = self.o.start + dt.timedelta(days=r.randrange(30, self.o.days + 200))
        return c

    def _groups(self) -> None:
        n_groups = max(1, self.o.customers // 200)
        for g in range(n_groups):
            gid = f"SIMG{g:05d}"
            handsets = int(self.rng.choice((15, 40, 120, 300, 650)) * self.rng.uniform(0.8, 1.2))
            self.groups[gid] = (f"Group {g}", self.rng.choice(SECTORS), handsets)
        for c in self.customers:
            if self.rng.random() < 0.1:
                c.group_id = self.rng.choice(list(self.groups))
                c.key_person = self.rng.random() < 0.2  # callbacks go to key persons

    @staticmethod
    def cell(area: str, n: int) -> str:
        return f"CELL-{area}-{n:05d}"

    def showcase(self) -> dict[str, str]:
        """Ids worth looking at once the feed has run: a DIAMOND plan holder, a manager, the
        first outage announced (one comes within the first weeks of a simulated year), the
        group with the most members."""
        diamond = next((c for c in self.customers if c.gotone_fee == 58_800), self.customers[0])
        sizes: dict[str, int] = {}
        for c in self.customers:
            if c.group_id:
                sizes[c.group_id] = sizes.get(c.group_id, 0) + 1
        return {
            "diamond_customer": diamond.customer_id,
            "manager": diamond.manager_id,
            "outage": self.outage_id(1),
            "group": min(sizes, key=lambda g: (-sizes[g], g)) if sizes else "SIMG00000",
        }

    def outage_id(self, n: int) -> str:
        return f"OUT-{self.o.seed}-{n:05d}"

    # -- events ----------------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        self.counter += 1
        return f"sim-{self.o.seed}-{kind}-{self.counter}"

    def _at(self, day: dt.date, hour: float) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(), ZONE) + dt.timedelta(hours=hour)
        return local.astimezone(dt.UTC)

    @staticmethod
    def _date(d: dt.date) -> common_pb2.Date:
        return common_pb2.Date(year=d.year, month=d.month, day=d.day)

    def _envelope(self, topic: str, c: Customer, at: dt.datetime, **payload: Message) -> Event:
        """One event of an envelope topic (customers, accounts) with its payload kind set."""
        m: Any = ENVELOPES[topic](event_id=self._id(topic.split(".")[0]), customer_id=c.customer_id)
        m.occurred_at.FromDatetime(at)
        for k, v in payload.items():
            getattr(m, k).CopyFrom(v)
        return (topic, c.customer_id, m)

    def _customer_event(self, c: Customer, at: dt.datetime, **payload: Message) -> Event:
        return self._envelope("crm.customers.v1", c, at, **payload)

    def _account_event(self, c: Customer, at: dt.datetime, **payload: Message) -> Event:
        return self._envelope("billing.accounts.v1", c, at, **payload)

    def onboarding(self) -> Iterator[Event]:
        """Groups, profiles and current plans, as CRM would publish them on day one."""
        at = self._at(self.o.start, 0.5)
        for gid, (name, sector, handsets) in self.groups.items():
            m = customers_pb2.CustomerEvent(event_id=self._id("grp"))
            m.occurred_at.FromDatetime(at)
            m.group_upserted.CopyFrom(
                customers_pb2.GroupUpserted(
                    group_id=gid,
                    name=name,
                    sector=sector,
                    handsets=handsets,
                    monthly_spend_fen=handsets * 9_000,
                )
            )
            yield ("crm.customers.v1", gid, m)
        for c in self.customers:
            yield self._profile(c, at)
            if c.gotone_fee:
                yield self._plan(c, at, c.gotone_fee, self._at(self.o.start, 0))
            if c.contract_end:
                yield self._customer_event(
                    c,
                    at,
                    contract_signed=customers_pb2.ContractSigned(
                        contract_id=f"K-{c.customer_id}",
                        starts_on=self._date(c.contract_end - dt.timedelta(days=730)),
                        ends_on=self._date(c.contract_end),
                    ),
                )

    def _profile(self, c: Customer, at: dt.datetime) -> Event:
        if c.do_not_disturb is None:
            c.do_not_disturb = self.rng.random() < 0.05
            c.credit_restore_hours = self.rng.choice((0, 0, 24, 48))
        u = customers_pb2.CustomerUpserted(
            msisdns=[c.msisdn],
            name=chinese_name(c.customer_id),
            birthday=self._date(c.birthday),
            joined_on=self._date(c.joined_on),
            is_key_person=c.key_person,
            manager_id=c.manager_id,
            do_not_disturb=c.do_not_disturb,
            credit_restore_hours=c.credit_restore_hours,
            home_cell_ids=list(c.home_cells),
            area_code=c.area,
        )
        if c.group_id:
            u.group_id = c.group_id
        return self._customer_event(c, at, customer_upserted=u)

    def _plan(self, c: Customer, at: dt.datetime, fee: int, start: dt.datetime) -> Event:
        p = customers_pb2.PlanChanged(plan_id=f"GT{fee // 100}", monthly_fee_fen=fee, gotone=True)
        p.effective_from.FromDatetime(start)
        return self._customer_event(c, at, plan_changed=p)

    def day(self, n: int) -> Iterator[Event]:
        """Everything that happens on simulated day `n` (0 = the start date)."""
        d = self.o.start + dt.timedelta(days=n)
        r = self.rng
        for c in self.customers:
            if r.random() < self.o.usage_per_day:
                yield self._usage(c, d)
            if r.random() < self.o.calls_per_day or (c.rival_caller and r.random() < 0.05):
                yield self._call(c, d)
            if d.day == 1:
                yield from self._month_start(c, d)
            yield from self._payments(c, d)
            if c.gotone_fee and d.day == 15 and r.random() < 0.01:
                fee = r.choice(GOTONE_FEES)  # raises and lowers, effective at once
                c.gotone_fee = fee
                yield self._plan(c, self._at(d, 10), fee, self._at(d, 10))
            if r.random() < 0.0003:
                kind = r.choice(("ELIGIBILITY_QUERY", "AUTH_CODE"))
                p = customers_pb2.PortOutRequested(
                    kind=customers_pb2.PortOutRequested.Kind.Value(kind)
                )
                yield self._customer_event(c, self._at(d, 20), port_out_requested=p)
            if r.random() < 0.0004:
                yield self._complaint(c, d)
            if c.rival_caller and c.group_id and d.day == 20 and r.random() < 0.1:
                c.group_id, c.key_person = None, False  # a churning group's member leaves it
                yield self._profile(c, self._at(d, 11))
        yield from self.outages(d)

    def outages(self, d: dt.date) -> Iterator[Event]:
        """The network's outages of a day: a planned cut-over or upgrade announced three days
        ahead (at night, a few hours, cells of one area), now and then an unplanned outage
        of a few cells, announced when it starts and ended hours later."""
        p = self.places
        if p.random() < PLANNED_PER_DAY:
            area = p.choice(AREAS)
            cells = p.sample(range(self.cells_per_area), min(self.cells_per_area, p.randint(5, 60)))
            starts = self._at(d + dt.timedelta(days=3), 1)
            kind = p.choice(("PLANNED_CUTOVER", "UPGRADE"))
            services: tuple[str, ...] = p.choice((("VOICE", "DATA"), ("DATA",), ("BROADBAND",)))
            yield self._outage(
                self._at(d, 10), kind, services, [self.cell(area, n) for n in cells], starts, 4
            )
        if p.random() < UNPLANNED_PER_DAY:
            area = p.choice(AREAS)
            cells = p.sample(range(self.cells_per_area), min(self.cells_per_area, p.randint(1, 20)))
            starts = self._at(d, p.uniform(0, 20))
            hours = p.uniform(1, 4)
            announce = starts + dt.timedelta(minutes=5)
            lost: tuple[str, ...] = p.choice((("VOICE", "DATA", "SMS"), ("DATA",)))
            topic, oid, m = self._outage(
                announce, "UNPLANNED", lost, [self.cell(area, n) for n in cells], starts, None
            )
            yield (topic, oid, m)
            end = outages_pb2.OutageEvent(event_id=f"{oid}-end", outage_id=oid)
            end.occurred_at.FromDatetime(starts + dt.timedelta(hours=hours))
            end.outage_ended.outage_id = oid
            end.outage_ended.ended_at.FromDatetime(starts + dt.timedelta(hours=hours))
            yield (topic, oid, end)

    def _outage(
        self,
        at: dt.datetime,
        kind: str,
        services: tuple[str, ...],
        cells: list[str],
        starts: dt.datetime,
        hours: float | None,
    ) -> Event:
        self.outage_count += 1
        oid = self.outage_id(self.outage_count)
        m = outages_pb2.OutageEvent(event_id=f"{oid}-announced", outage_id=oid)
        m.occurred_at.FromDatetime(at)
        a = m.outage_announced
        a.outage_id = oid
        a.kind = outages_pb2.OutageAnnounced.Kind.Value(kind)
        a.services.extend(services)
        a.cell_ids.extend(sorted(cells))
        a.starts_at.FromDatetime(starts)
        if hours is not None:
            a.ends_at.FromDatetime(starts + dt.timedelta(hours=hours))
        a.description = {"PLANNED_CUTOVER": "核心网割接", "UPGRADE": "基站设备升级"}.get(
            kind, "传输线路故障"
        )
        return ("network.outages.v1", oid, m)

    def _usage(self, c: Customer, d: dt.date) -> Event:
        r = self.rng
        kind = r.choice(("VOICE", "DATA", "DATA", "SMS"))
        m = usage_pb2.UsageRecorded(
            event_id=self._id("use"),
            customer_id=c.customer_id,
            msisdn=c.msisdn,
            kind=usage_pb2.UsageRecorded.Kind.Value(kind),
            roaming=usage_pb2.UsageRecorded.Roaming.Value(
                r.choices(("DOMESTIC", "HMT", "INTERNATIONAL"), (95, 3, 2))[0]
            ),
            premium=r.random() < 0.01,
            forwarded=False,
            charged_fen=int(r.expovariate(1 / 80)),
            volume_bytes=int(r.expovariate(1 / 50_000_000)) if kind == "DATA" else 0,
            duration_s=int(r.expovariate(1 / 120)) if kind == "VOICE" else 0,
        )
        m.occurred_at.FromDatetime(self._at(d, r.uniform(7, 23)))
        return ("billing.usage.v1", c.customer_id, m)

    def _call(self, c: Customer, d: dt.date) -> Event:
        r = self.rng
        m = calls_pb2.CallRecorded(
            event_id=self._id("call"),
            customer_id=c.customer_id,
            msisdn=c.msisdn,
            direction=calls_pb2.CallRecorded.Direction.Value(r.choice(("OUTGOING", "INCOMING"))),
            other_number=f"1{r.choice('3578')}{r.randrange(10**9):09d}",
            duration_s=int(r.expovariate(1 / 90)),
        )
        if c.rival_caller and r.random() < 0.5:
            m.other_number = r.choice(RIVAL_SERVICE_NUMBERS)
            m.duration_s = r.randrange(20, 300)  # around the 60-second threshold
        if c.forwarder and r.random() < 0.7:
            m.forwarded_to = f"{r.choice(RIVAL_PREFIXES)}{r.randrange(10**8):08d}"
        m.occurred_at.FromDatetime(self._at(d, r.uniform(8, 22)))
        return ("network.calls.v1", c.customer_id, m)

    def _month_start(self, c: Customer, d: dt.date) -> Iterator[Event]:
        """Bill the month that just ended; payment is due on the 20th."""
        prev = d - dt.timedelta(days=1)
        period = f"{prev.year:04d}-{prev.month:02d}"
        amount = max(0, int(c.monthly_fen * self.rng.uniform(0.6, 1.4)))
        if c.suspended:
            amount = 0
        bill_id = f"B-{c.customer_id}-{period}"
        due = d.replace(day=20)
        b = accounts_pb2.BillIssued(
            bill_id=bill_id,
            period=period,
            amount_fen=amount,
            countable_fen=amount * 9 // 10,
            due_on=self._date(due),
        )
        yield self._account_event(c, self._at(d, 2), bill_issued=b)
        if amount:
            r = self.rng
            never = r.random() < 0.1 * c.late_payer
            late = r.random() < c.late_payer
            pay_day = (
                None if never else due + dt.timedelta(days=10 if late else -r.randrange(1, 15))
            )
            c.unpaid[bill_id] = (amount, due, pay_day)

    def _payments(self, c: Customer, d: dt.date) -> Iterator[Event]:
        for bill_id, (amount, due, pay_day) in list(c.unpaid.items()):
            if d == pay_day:
                p = accounts_pb2.PaymentReceived(bill_id=bill_id, amount_fen=amount)
                at = self._at(d, self.rng.uniform(9, 21))
                yield self._account_event(c, at, payment_received=p)
                del c.unpaid[bill_id]
                if c.suspended and not c.unpaid:
                    c.suspended = False
                    yield self._account_event(
                        c, self._at(d, 22), account_resumed=accounts_pb2.AccountResumed()
                    )
            elif d == due + dt.timedelta(days=15) and not c.suspended:
                c.suspended = True
                reason = accounts_pb2.AccountSuspended.Reason.Value("ARREARS")
                suspended = accounts_pb2.AccountSuspended(reason=reason)
                yield self._account_event(c, self._at(d, 3), account_suspended=suspended)

    def _complaint(self, c: Customer, d: dt.date) -> Event:
        r = self.rng
        names, weights = zip(*CHANNELS, strict=True)
        at = self._at(d, r.uniform(8, 20))
        m = care_pb2.ComplaintEvent(event_id=self._id("cmp"), customer_id=c.customer_id)
        m.occurred_at.FromDatetime(at)
        f = care_pb2.ComplaintFiled(
            complaint_id=f"CMP-{self.counter}",
            channel=care_pb2.ComplaintFiled.Channel.Value(r.choices(names, weights)[0]),
            category=r.choice(CATEGORIES),
            text="synthetic complaint",
        )
        f.filed_at.FromDatetime(at)
        m.complaint_filed.CopyFrom(f)
        return ("care.complaints.v1", c.customer_id, m)
