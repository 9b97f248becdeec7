"""Issue 19's engine spike: the warnings service's hardest case on the two maintained engines the
client allows, faust-streaming (an agent over a RocksDB table) and Quix Streams (a
StreamingDataFrame over concatenated topics, RocksDB state), with the same records on the same
broker in the same run, each engine in a process of its own, against the raw consume rate of
the same topics.

The case, as the warnings service has it:
- one customer's state across five co-partitioned topics: crm profiles, tier decisions, usage,
  calls and accounts (the contract's own messages, protobuf-encoded);
- a call to a rival's service line raises a warning that carries the customer's manager,
  do-not-disturb flag and tier (counted as decided *without profile* when any is missing);
- a monthly close in event time for every customer of a partition, silent ones too: usage
  fell by half (or to nothing) against the month before;
- due-time signals from bills: PAYMENT_DUE_SOON three days before due and OVERDUE the day
  after, unless paid by then.

Neither engine has due-time callbacks over a partition's keys in event time, so both get the
same small layer (`Timers`): a partition-scoped index of due times kept in the engine's own
state, next to the customers' states, fired as the partition's event time passes them. The
parent folds the same feed in the engines' order with the same pure rules (`Reference`) and
checks each engine's decisions against it: the same set, or how far off.

`python bench/engine_spike.py` (or `make bench BENCH_ARGS="--only engines"`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pathlib
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hvc.common.streams import DictKV, Timer, Timers
from hvc.events.v1 import (
    accounts_pb2,
    calls_pb2,
    customers_pb2,
    tiering_pb2,
    usage_pb2,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ZONE = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no DST
RIVALS = frozenset({"10010", "10000"})
KINDS = ("crm", "tiers", "usage", "calls", "accounts")
MESSAGES: dict[str, Any] = {
    "crm": customers_pb2.CustomerEvent,
    "tiers": tiering_pb2.TierDecided,
    "usage": usage_pb2.UsageRecorded,
    "calls": calls_pb2.CallRecorded,
    "accounts": accounts_pb2.AccountEvent,
}
T0_MS = 1_735_660_800_000  # 2025-01-01 00:00 +08:00
RESULTS = pathlib.Path(__file__).parent / "results"

State = dict[str, Any]
Decision = dict[str, Any]


# --- the rules, shared by both engines and the reference -------------------------------------


def month_of(ts_ms: int) -> int:
    d = dt.datetime.fromtimestamp(ts_ms / 1000, ZONE)
    return d.year * 100 + d.month


def month_end_ms(month: int) -> int:
    y, m = divmod(month, 100)
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return int(dt.datetime(y, m, 1, tzinfo=ZONE).timestamp() * 1000)


def next_month(month: int) -> int:
    y, m = divmod(month, 100)
    return (y + 1) * 100 + 1 if m == 12 else y * 100 + m + 1


def previous_month(month: int) -> int:
    y, m = divmod(month, 100)
    return (y - 1) * 100 + 12 if m == 1 else y * 100 + m - 1


def decode(kind: str, data: bytes) -> dict[str, Any]:
    """A record of one of the five topics, as the few fields the rules read."""
    return fields(kind, MESSAGES[kind].FromString(data))


def fields(kind: str, msg: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"k": kind, "cid": msg.customer_id, "id": msg.event_id}
    if kind == "crm":
        up = msg.customer_upserted
        ev["m"], ev["d"] = up.manager_id if up.HasField("manager_id") else "", up.do_not_disturb
    elif kind == "tiers":
        ev["t"] = int(msg.new_tier)
    elif kind == "usage":
        ev["fen"] = msg.charged_fen
    elif kind == "calls":
        ev["to"] = msg.other_number
    elif msg.WhichOneof("payload") == "bill_issued":
        ev["k"], ev["bill"] = "bill", msg.bill_issued.bill_id
        due = msg.bill_issued.due_on
        ev["due"] = int(dt.datetime(due.year, due.month, due.day, tzinfo=ZONE).timestamp() * 1000)
    else:
        ev["k"], ev["bill"] = "payment", msg.payment_received.bill_id
    return ev


def _decision(st: State, cid: str, code: str, ref: Any) -> Decision:
    return {"cid": cid, "code": code, "ref": str(ref), "m": st.get("m"), "t": st.get("t")}


def fold(st: State, ev: dict[str, Any], ts: int) -> tuple[list[Decision], list[Timer]]:
    """One event into its customer's state: the decisions it makes and the timers it sets."""
    cid, kind = ev["cid"], ev["k"]
    out: list[Decision] = []
    timers: list[Timer] = []
    if kind == "crm":
        st["m"], st["d"] = ev["m"], ev["d"]
    elif kind == "tiers":
        st["t"] = ev["t"]
    elif kind == "usage":
        month = month_of(ts)
        usage = st.setdefault("u", {})
        key = str(month)
        usage[key] = usage.get(key, 0) + ev["fen"]
        if st.get("c") is None:
            st["c"] = month
            timers.append((month_end_ms(month), cid, "close", month))
    elif kind == "calls":
        if ev["to"] in RIVALS and not st.get("d"):
            out.append(_decision(st, cid, "RIVAL_CALL", ev["id"]))
    elif kind == "bill":
        st.setdefault("b", {})[ev["bill"]] = False
        timers.append((ev["due"] - 3 * DAY_MS, cid, "soon", ev["bill"]))
        timers.append((ev["due"] + DAY_MS, cid, "overdue", ev["bill"]))
    elif kind == "payment":
        bills = st.get("b", {})
        if ev["bill"] in bills:
            bills[ev["bill"]] = True
    return out, timers


def fire(st: State, cid: str, what: str, arg: Any) -> tuple[list[Decision], list[Timer]]:
    """A due time reached in event time: what it decides and the timers it sets again."""
    out: list[Decision] = []
    timers: list[Timer] = []
    if what == "close":
        usage = st.get("u", {})
        month, before = int(arg), previous_month(int(arg))
        now, then = usage.get(str(month), 0), usage.get(str(before), 0)
        if then > 0 and now * 2 < then:
            out.append(_decision(st, cid, "USAGE_DROP", month))
        usage.pop(str(before), None)
        if now > 0 or then > 0:
            st["c"] = next_month(month)
            timers.append((month_end_ms(st["c"]), cid, "close", st["c"]))
        else:
            st["c"] = None
    else:
        bills = st.get("b", {})
        if arg in bills and not bills[arg]:
            out.append(_decision(st, cid, "PAYMENT_DUE_SOON" if what == "soon" else "OVERDUE", arg))
        if what == "overdue":
            bills.pop(arg, None)
    return out, timers


def run_timers(
    timers: Timers, ts: int, load: Callable[[str], State], save: Callable[[str, State], None]
) -> list[Decision]:
    """Fire what event time `ts` passed, as hvc.common.streams does: each timer's decisions,
    and the timers it sets again, fired at once when they are due already."""
    out: list[Decision] = []
    while due := timers.advance(ts):
        for _, cid, what, arg in due:
            st = load(cid)
            decided, again = fire(st, cid, what, arg)
            save(cid, st)
            out.extend(decided)
            timers.schedule(again)
    return out


class Reference:
    """The same rules folded in plain dicts, partition by partition in event-time order: what
    both engines must decide."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.timers: dict[int, Timers] = {}

    def handle(self, partition: int, ev: dict[str, Any], ts: int) -> list[Decision]:
        timers = self.timers.setdefault(partition, Timers(DictKV()))
        out = run_timers(timers, ts, lambda c: self.states.setdefault(c, {}), lambda c, s: None)
        st = self.states.setdefault(ev["cid"], {})
        decided, new = fold(st, ev, ts)
        timers.schedule(new)
        return out + decided


# --- the feed ------------------------------------------------------------------------------


def feed(customers: int, seed: int = 19) -> dict[str, list[tuple[bytes, bytes, int]]]:
    """Three months of five topics for `customers` customers: key, value, timestamp (ms), each
    timestamp unique so that event-time order is one order."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[bytes, bytes, int]]] = {k: [] for k in KINDS}
    slot = 0

    def at(day: float) -> int:
        nonlocal slot
        slot += 1
        return T0_MS + int(day * DAY_MS) + slot % 1000

    for i in range(customers):
        cid = f"S{i:07d}"
        key = cid.encode()
        ce = customers_pb2.CustomerEvent(event_id=f"p-{cid}", customer_id=cid)
        ce.customer_upserted.name = cid
        if rng.random() < 0.9:
            ce.customer_upserted.manager_id = f"M{rng.randrange(200):04d}"
        ce.customer_upserted.do_not_disturb = rng.random() < 0.05
        ts = at(rng.random() * 2)
        ce.occurred_at.FromMilliseconds(ts)
        out["crm"].append((key, ce.SerializeToString(), ts))
        td = tiering_pb2.TierDecided(
            event_id=f"t-{cid}",
            customer_id=cid,
            old_tier=1,
            new_tier=rng.choice([1, 2, 3, 4]),
            source=tiering_pb2.TierDecided.ANNUAL,
        )
        ts = at(2 + rng.random())
        td.occurred_at.FromMilliseconds(ts)
        out["tiers"].append((key, td.SerializeToString(), ts))
        dropping = rng.random() < 0.1
        for n in range(rng.randrange(6, 14)):
            day = 3 + rng.random() * 85
            if dropping and day > 59 and rng.random() < 0.8:
                continue
            ur = usage_pb2.UsageRecorded(
                event_id=f"u-{cid}-{n}",
                customer_id=cid,
                msisdn="13900000000",
                kind=usage_pb2.UsageRecorded.DATA,
                roaming=usage_pb2.UsageRecorded.DOMESTIC,
                charged_fen=rng.randrange(100, 5000),
            )
            ts = at(day)
            ur.occurred_at.FromMilliseconds(ts)
            out["usage"].append((key, ur.SerializeToString(), ts))
        for n in range(rng.randrange(2, 8)):
            other = rng.choice(sorted(RIVALS)) if rng.random() < 0.03 else f"138{n:08d}"
            cr = calls_pb2.CallRecorded(
                event_id=f"c-{cid}-{n}",
                customer_id=cid,
                msisdn="13900000000",
                other_number=other,
                direction=calls_pb2.CallRecorded.OUTGOING,
                duration_s=rng.randrange(1, 600),
            )
            ts = at(3 + rng.random() * 85)
            cr.occurred_at.FromMilliseconds(ts)
            out["calls"].append((key, cr.SerializeToString(), ts))
        issued = 30 + rng.random() * 5
        bill = accounts_pb2.AccountEvent(event_id=f"b-{cid}", customer_id=cid)
        bill.bill_issued.bill_id = f"B-{cid}"
        bill.bill_issued.period = "2025-01"
        bill.bill_issued.amount_fen = 10_000
        bill.bill_issued.countable_fen = 10_000
        bill.bill_issued.due_on.year, bill.bill_issued.due_on.month = 2025, 2
        bill.bill_issued.due_on.day = 20
        ts = at(issued)
        bill.occurred_at.FromMilliseconds(ts)
        out["accounts"].append((key, bill.SerializeToString(), ts))
        paid = rng.random()
        if paid < 0.9:
            pay = accounts_pb2.AccountEvent(event_id=f"pay-{cid}", customer_id=cid)
            pay.payment_received.bill_id = f"B-{cid}"
            pay.payment_received.amount_fen = 10_000
            # before the reminder, between reminder and due, or late
            day = 36 + rng.random() * 10 if paid < 0.6 else 47 + rng.random() * 3
            ts = at(day if paid < 0.8 else 52 + rng.random() * 5)
            pay.occurred_at.FromMilliseconds(ts)
            out["accounts"].append((key, pay.SerializeToString(), ts))
    return out


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (the Java client's and aiokafka's)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def reference(records: dict[str, list[tuple[bytes, bytes, int]]], partitions: int) -> set[str]:
    merged = sorted(
        (ts, murmur2_partition(k, partitions), kind, v)
        for kind, rows in records.items()
        for k, v, ts in rows
    )
    ref = Reference()
    out: set[str] = set()
    for ts, p, kind, v in merged:
        out.update(_signature(d) for d in ref.handle(p, decode(kind, v), ts))
    return out


def _signature(d: Decision) -> str:
    return f"{d['cid']}|{d['code']}|{d['ref']}|{d['m']}|{d['t']}"


# --- the engines, each in a process of its own ---------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SpikeHandler:
    """The spike's rules as an hvc.common.streams handler: what the services run on."""

    def __init__(self, kinds: dict[str, str], out: str, seen: dict[str, Any]) -> None:
        self.kinds, self.out, self.seen = kinds, out, seen

    def event_time_ms(self, topic: str, message: Any, record: Any) -> int:
        return int(record.timestamp_ms)  # the feed's record times are its event times

    def _emit(self, ctx: Any, decided: list[Decision]) -> None:
        for d in decided:
            ctx.emit(self.out, d["cid"], json.dumps(d).encode())
        self.seen["decided"] += len(decided)

    def handle(self, ctx: Any, topic: str, message: Any) -> None:
        ev = fields(self.kinds[topic], message)
        decided, timers = fold(ctx.state(ev["cid"]), ev, ctx.record.timestamp_ms)
        for t in timers:
            ctx.schedule(*t)
        self._emit(ctx, decided)

    def fire(self, ctx: Any, key: str, what: str, arg: Any) -> None:
        decided, timers = fire(ctx.state(key), key, what, arg)
        for t in timers:
            ctx.schedule(*t)
        self._emit(ctx, decided)


def worker_quix(args: dict[str, Any]) -> dict[str, Any]:
    from hvc.common.streams import EngineSettings, Pipeline, StreamApp

    topics, total = args["topics"], args["total"]
    seen = {"n": 0, "t0": 0.0, "decided": 0}
    handler = SpikeHandler({name: kind for kind, name in topics.items()}, args["out"], seen)
    pipeline = Pipeline("spike", {topics[k]: MESSAGES[k] for k in KINDS}, handler)

    def processed(_topic: str, _partition: int, _offset: int) -> None:
        if not seen["t0"]:
            seen["t0"] = time.perf_counter()
        seen["n"] += 1
        if seen["n"] >= total:
            app.stop()

    app = StreamApp(
        pipeline,
        EngineSettings(
            bootstrap_servers=args["bootstrap"],
            consumer_group=f"spike-quix-{uuid.uuid4().hex[:6]}",
            state_dir=args["state_dir"],
            commit_interval_s=float(os.environ.get("HVC_SPIKE_COMMIT_S", "1")),
        ),
        on_processed=processed,
    )
    app.run()
    return {
        "records": seen["n"],
        "seconds": time.perf_counter() - seen["t0"],
        "rss_mib": _rss_mib(),
        "decided": seen["decided"],
    }


class _FaustKV:
    """A partition's timers in a faust table: keys written while one of the partition's events
    is handled go to that partition's changelog and store."""

    def __init__(self, table: Any, prefix: str) -> None:
        self.table, self.prefix = table, prefix

    def get(self, k: str, default: Any = None) -> Any:
        return self.table.get(self.prefix + k, default)

    def set(self, k: str, v: Any) -> None:
        self.table[self.prefix + k] = v

    def delete(self, k: str) -> None:
        self.table.pop(self.prefix + k, None)


def worker_faust(args: dict[str, Any]) -> dict[str, Any]:
    import faust

    topics, total, out_name = args["topics"], args["total"], args["out"]
    kind_of = {name: kind for kind, name in topics.items()}
    app = faust.App(
        f"spike-faust-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{args['bootstrap']}",
        store="rocksdb://",
        datadir=args["state_dir"],
        topic_partitions=args["partitions"],
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_partitioner=None,
    )
    table = app.Table("state", partitions=args["partitions"], default=None)
    source = app.topic(*topics.values(), key_serializer="raw", value_serializer="raw")
    out_topic = app.topic(out_name, key_serializer="raw", value_serializer="json")
    seen: dict[str, Any] = {"n": 0, "t0": 0.0, "took": 0.0}

    @app.agent(source)
    async def process(stream: Any) -> None:
        async for event in stream.events():
            if not seen["t0"]:
                seen["t0"] = time.perf_counter()
            msg = event.message
            ev = decode(kind_of[msg.topic], event.value)
            ts = msg.timestamp_ms if hasattr(msg, "timestamp_ms") else int(msg.timestamp * 1000)

            touched: dict[str, State] = {}
            timers = Timers(_FaustKV(table, f"\x00p{msg.partition}:"))

            def load(cid: str, touched: dict[str, State] = touched) -> State:
                if cid not in touched:
                    touched[cid] = table.get(cid) or {}
                return touched[cid]

            def save(cid: str, st: State) -> None:
                table[cid] = st

            out = run_timers(timers, ts, load, save)
            st = load(ev["cid"])
            decided, new = fold(st, ev, ts)
            save(ev["cid"], st)
            timers.schedule(new)
            for d in out + decided:
                await out_topic.send(key=d["cid"].encode(), value=d)
            seen["n"] += 1
            if seen["n"] >= total:
                await app.producer.flush()
                seen["took"] = time.perf_counter() - seen["t0"]
                result = {"records": seen["n"], "seconds": seen["took"], "rss_mib": _rss_mib()}
                with open(args["result"], "w") as f:  # noqa: ASYNC230 - the process ends here
                    f.write(json.dumps(result))
                os._exit(0)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()
    return json.loads(pathlib.Path(args["result"]).read_text())


# --- the parent ----------------------------------------------------------------------------


async def _produce(
    bootstrap: str,
    records: dict[str, list[tuple[bytes, bytes, int]]],
    topics: dict[str, str],
    partitions: int,
) -> None:
    await _create(bootstrap, [*topics.values(), *(f"{t}.dlq" for t in topics.values())], partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        pending = []
        for kind, rows in records.items():
            for k, v, ts in sorted(rows, key=lambda r: r[2]):
                pending.append(await producer.send(topics[kind], v, key=k, timestamp_ms=ts))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _raw_rate(bootstrap: str, topics: dict[str, str], total: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics.values(),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"spike-raw-{uuid.uuid4().hex[:6]}",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen, t0 = 0, 0.0
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if batch and not t0:
                t0 = time.perf_counter()
            seen += sum(len(r) for r in batch.values())
        return total / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def _decisions(bootstrap: str, topic: str, partitions: int) -> list[Decision]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Decision] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            out.extend(json.loads(r.value) for rs in batch.values() for r in rs)
        if len(out) != sum(ends.values()):
            raise RuntimeError(f"read {len(out):,} of {sum(ends.values()):,} on {topic}")
        return out
    finally:
        await consumer.stop()


def _compare(name: str, got: list[Decision], expected: set[str]) -> dict[str, float]:
    signatures = [_signature(d) for d in got]
    unique = set(signatures)
    without = sum(
        1 for d in got if d["code"] == "RIVAL_CALL" and (d["m"] is None or d["t"] is None)
    )
    missing = sorted(expected - unique)
    if missing:  # by code, and a few of them, for a person looking into it
        codes: dict[str, int] = {}
        for m in missing:
            codes[m.split("|")[1]] = codes.get(m.split("|")[1], 0) + 1
        print(f"  {name}: missing by code {codes}; e.g. {missing[:3]}", flush=True)
    return {
        f"engine_{name}_decisions": float(len(unique)),
        f"engine_{name}_decisions_doubled": float(len(signatures) - len(unique)),
        f"engine_{name}_decisions_missing": float(len(expected - unique)),
        f"engine_{name}_decisions_wrong": float(len(unique - expected)),
        f"engine_{name}_rival_calls_without_profile": float(without),
    }


def run(bootstrap: str, customers: int, partitions: int = 12) -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    topics = {k: f"bench.spike.{run_id}.{k}" for k in KINDS}
    records = feed(customers)
    total = sum(len(r) for r in records.values())
    asyncio.run(_produce(bootstrap, records, topics, partitions))
    expected = reference(records, partitions)
    figures: dict[str, float] = {
        "engine_records": float(total),
        "engine_expected_decisions": float(len(expected)),
        "engine_raw_consume_per_s": asyncio.run(_raw_rate(bootstrap, topics, total)),
    }
    print(
        f"engine spike: {customers:,} customers, {total:,} records on 5 topics of "
        f"{partitions} partitions; raw consume {figures['engine_raw_consume_per_s']:,.0f}/s; "
        f"{len(expected):,} decisions expected",
        flush=True,
    )
    for name in os.environ.get("HVC_SPIKE_ENGINES", "quix,faust").split(","):
        out = f"bench.spike.{run_id}.out-{name}"
        asyncio.run(_create(bootstrap, [out], partitions))
        state_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"hvc-spike-{name}-"))
        result = state_dir / "result.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "bootstrap": bootstrap,
            "topics": topics,
            "total": total,
            "out": out,
            "partitions": partitions,
            "state_dir": str(state_dir),
            "result": str(result),
        }
        proc = subprocess.run(
            [sys.executable, __file__, "worker", name, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        try:
            res = json.loads(result.read_text())
        except (OSError, ValueError):
            print(f"engine spike: {name} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
            shutil.rmtree(state_dir, ignore_errors=True)
            continue
        shutil.rmtree(state_dir, ignore_errors=True)
        rate = res["records"] / res["seconds"]
        got = asyncio.run(_decisions(bootstrap, out, partitions))
        if "decided" in res and res["decided"] != len(got):
            print(f"  {name}: decided {res['decided']:,}, on its output topic {len(got):,}")
        figures[f"engine_{name}_records_per_s"] = rate
        figures[f"engine_{name}_of_raw"] = rate / figures["engine_raw_consume_per_s"]
        figures[f"engine_{name}_peak_rss_mib"] = res["rss_mib"]
        figures |= _compare(name, got, expected)
        f = {k.removeprefix(f"engine_{name}_"): v for k, v in figures.items()}
        print(
            f"  {name:<6}{rate:>10,.0f} records/s ({f['of_raw']:.3f} of raw), "
            f"peak RSS {res['rss_mib']:.0f} MiB; decisions {f['decisions']:,.0f}"
            f", missing {figures[f'engine_{name}_decisions_missing']:,.0f}, wrong "
            f"{figures[f'engine_{name}_decisions_wrong']:,.0f}, doubled "
            f"{figures[f'engine_{name}_decisions_doubled']:,.0f}; rival calls without profile "
            f"{figures[f'engine_{name}_rival_calls_without_profile']:,.0f}",
            flush=True,
        )
    return figures


async def _create(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # The feed's event times are in 2025: a topic's time retention would delete its
        # records while the engines read them (the broker checks every five minutes).
        keep = {"retention.ms": "-1"}
        await admin.create_topics([NewTopic(t, partitions, 1, topic_configs=keep) for t in topics])
    finally:
        await admin.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        spec = json.loads(sys.argv[3])
        work = worker_quix if sys.argv[2] == "quix" else worker_faust
        if profile := os.environ.get("HVC_SPIKE_PROFILE"):  # where a worker's time goes
            import cProfile

            with cProfile.Profile() as prof:
                res = work(spec)
            prof.dump_stats(f"{profile}.{sys.argv[2]}")
        else:
            res = work(spec)
        pathlib.Path(spec["result"]).write_text(json.dumps(res))
        return
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    figures = run(bootstrap, customers)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_spike.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
