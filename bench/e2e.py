"""The platform end to end, and each stream service alone, against the real broker and store.

1. Backlog, one stream service at a time: a world of `backlog_customers` (100,000 by default:
   their onboarding and `backlog_days` days) is published while no service runs; each stream
   service then drains it alone (tiering first: its decisions are the others' input). Figures:
   events/s sustained (its input records over the time from its first commit to lag zero), the
   ratio to the raw consume rate measured in the same run, peak RSS (VmHWM); then, holding
   that state, kill -9 and the seconds until it is ready and handles records again (restarted
   on its own local state, then as a new pod restoring all from the changelogs).
2. Fixed offered load, all five services: the simulator offers `rate` events/s for `seconds`.
   Figures: publish → decision latency p50/p99/max per output topic, from the upstream record
   that caused it (the `hvc-cause` headers, followed through tier decisions); consumer lag of
   each service every second; the seconds until lag is back to zero after the feed stops; peak
   RSS; the CPU seconds each process used (services, broker, store, feed) and how busy the
   machine's cores were, each second and over the load (so a latency tail can be told from a
   machine with no CPU left). A PNG of lag, CPU and latency over time goes to bench/results/.
3. A profile: py-spy samples each stream service for `profile_s` seconds in the middle of the
   fixed load; the heaviest frames (own time) go to bench/results/ and the figures name the
   heaviest of each service.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import pathlib
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer

from hvc.common import tracing
from hvc.devinfra import chaos, local

STREAM = chaos.STREAM_SERVICES  # tiering first
ALL = (*STREAM, "gateway")
HTTP_PORT = 18380
FEED_SEED, FEED_DAYS = 7, 3650  # the fixed load's simulated world (it stops on time first)
RESULTS = pathlib.Path(__file__).parent / "results"
OURS = tuple(f"{p}/" for p in (*ALL, "common"))  # py-spy names hvc/<package>/... so


def _status_kib(pid: int | None, field: str) -> int:
    if pid is None:
        return 0
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


TICK_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user and system) a process has used, 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK_S


def _machine() -> tuple[int, int]:
    """(busy, all) jiffies of every core since boot, from /proc/stat (idle and iowait idle)."""
    values = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuWatch:
    """CPU seconds per process and the machine's busy share, sampled each tick: a process that
    ends (the feed) keeps what it used until then."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}
        self.start = {k: _cpu_s(v) for k, v in self.pids.items()}
        self.used = dict.fromkeys(self.pids, 0.0)
        self.first = self.last = _machine()

    def tick(self) -> float:
        """The machine's busy share since the last tick (0..1)."""
        for k, pid in self.pids.items():
            used = _cpu_s(pid)
            if used:
                self.used[k] = max(self.used[k], used - self.start[k])
        now = _machine()
        busy, total = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return busy / total if total else 0.0

    def busy_share(self) -> float:
        return (self.last[0] - self.first[0]) / max(1, self.last[1] - self.first[1])


class Platform:
    """The services as processes on fresh stores (one database per service and run)."""

    def __init__(
        self,
        kafka: str,
        mongo: str,
        env: Mapping[str, str] | None = None,
        replicas: Mapping[str, int] | None = None,
    ) -> None:
        self.inst = local.attached("bench-e2e", HTTP_PORT)
        # Processes of a service beyond the first in the fixed load, each as another pod (an
        # instance of its own: its HTTP port and local state) in the same group and database.
        self.replicas = {s: n for s, n in (replicas or {}).items() if n > 1}
        most = max(self.replicas.values(), default=1)
        self.others = [
            local.attached(f"bench-e2e-{i}", HTTP_PORT + 1000 * i) for i in range(1, most)
        ]
        self.kafka, self.mongo = kafka, mongo
        self.env = dict(env or {})  # settings every service starts with (HVC_STREAM_..., say)
        self.tag = uuid.uuid4().hex[:8]
        # each service's database; an engine's group, state and changelogs go with it
        self.dbs = {s: f"bench_e2e_{s}_{self.tag}" for s in local.SERVICES}

    def start(self, service: str, replica: int = 0) -> None:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "MONGO_URI": self.mongo,
            "HVC_LOG_LEVEL": "WARNING",
            **chaos.service_env(service, self.dbs),
            **self.env,
        }
        local.start_service(self.where(replica), service, env_overrides=env)

    def where(self, replica: int) -> local.Instance:
        return self.inst if replica == 0 else self.others[replica - 1]

    def members(self) -> list[tuple[str, str, int]]:
        """(name, service, replica) of each stream or gateway process of the fixed load: the
        first of a service is named after it, the others `<service>-<replica>`."""
        return [
            (s if i == 0 else f"{s}-{i}", s, i) for s in ALL for i in range(self.replicas.get(s, 1))
        ]

    def pid(self, name: str, replica: int = 0) -> int | None:
        return local.running_pid(self.where(replica), name)

    def peak_rss_mib(self, service: str, replica: int = 0) -> float:
        return _status_kib(self.pid(service, replica), "VmHWM") / 1024

    def view_write_seconds(self, service: str) -> float:
        """The seconds the service's checkpoints spent writing views so far (its metric)."""
        import httpx

        try:
            text = httpx.get(
                f"http://127.0.0.1:{self.inst.http_port(service)}/metrics", timeout=5
            ).text
        except httpx.HTTPError:
            return float("nan")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("hvc_stream_view_write_seconds_total{")
        )

    def feed(self, customers: int, days: int, rate: float = 0.0, seconds: float = 0.0) -> None:
        f = local.Feed(customers, days, 0.0, FEED_SEED, events_per_second=rate, seconds=seconds)
        local.start_feed(self.inst, f, bootstrap=self.kafka)

    def feeding(self) -> bool:
        return self.pid("simulator") is not None

    def stop_all(self) -> None:
        for name in ("simulator", *ALL):
            local.stop(self.inst, name)
        for other in self.others:
            for name in ALL:
                local.stop(other, name)

    def drop_stores(self) -> None:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(self.mongo)
        for s in ALL:
            client.drop_database(f"bench_e2e_{s}_{self.tag}")
        client.close()


async def backlog(
    p: Platform, customers: int, days: int, raw_rate: float, cap_s: float
) -> dict[str, float]:
    out: dict[str, float] = {}
    p.feed(customers, days)
    t0 = time.monotonic()
    await asyncio.to_thread(local.wait_feed, p.inst, 3600)
    print(f"e2e: backlog of {customers:,} customers published in {time.monotonic() - t0:.0f}s")
    async with chaos.LagProbe(p.kafka) as lag:
        for s in STREAM:
            initial = await lag.of(s, p.dbs)
            started = time.monotonic()
            p.start(s)
            # From readiness (its state loaded, its partitions assigned); from its start when it
            # drained the backlog before it answered ready.
            await asyncio.to_thread(local.wait_ready, p.inst, s, 180)
            ready = time.monotonic()
            writing_before = await asyncio.to_thread(p.view_write_seconds, s)
            at_ready = left = await lag.of(s, p.dbs)
            while left > 0 and time.monotonic() - ready < cap_s:
                await asyncio.sleep(0.25)
                left = await lag.of(s, p.dbs)
            end = time.monotonic()
            if end - ready > 2:
                rate = (at_ready - left) / (end - ready)
            else:
                rate = (initial - left) / (end - started)
            out[f"{s}_events_per_s"] = rate
            out[f"{s}_backlog_left"] = left  # > 0: the drain was cut at cap_s
            out[f"{s}_ratio_to_raw_consume"] = rate / raw_rate if raw_rate else 0.0
            out[f"{s}_backlog_peak_rss_mib"] = p.peak_rss_mib(s)
            # The store's share: the time its checkpoints spent writing views while draining.
            writing = await asyncio.to_thread(p.view_write_seconds, s) - writing_before
            share = writing / (end - ready) if end - ready > 2 else float("nan")
            out[f"{s}_backlog_view_write_share"] = share
            print(
                f"e2e: {s} took {initial - left:,} of {initial:,} records at {rate:,.0f}/s; "
                f"{writing:.1f} s of the {end - ready:.1f} s writing views ({share:.0%})"
            )
            if left == 0:
                out |= await recovery(p, s, lag, _within(days))
            local.stop(p.inst, s)
    return out


def _within(days: int) -> dt.datetime:
    """An instant inside the backlog's last simulated day (noon UTC): the recovery probes'
    event time. The samples' own (2026-01-15) is a year past the simulator's 2025 world, so
    each probe moved its partition's time a year on in the services that read the same
    topic (warnings, benefits), which then fired a year of daily and monthly closes for every
    customer of the partition: the bursts that took warnings' drain and memory figures over
    until 2026-12-05."""
    from hvc.simulator.world import Options

    last = Options().start + dt.timedelta(days=days - 1)
    return dt.datetime.combine(last, dt.time(12), dt.UTC)


async def recovery(p: Platform, s: str, lag: chaos.LagProbe, at: dt.datetime) -> dict[str, float]:
    """kill -9 of a service holding the backlog's customers' state, then: the seconds until
    it is ready again and until it handles records again (a probe record on every partition
    of its first input, then its lag back to zero: the group's rebalance past the dead
    member's session and the state's recovery included); once restarted on its own local
    state (a process restarted in its pod), once on none (a new pod: all from the
    changelogs)."""
    from aiokafka import AIOKafkaProducer

    from hvc.common.topics import spec
    from hvc.devinfra.samples import samples

    topic = chaos.inputs_of(s)[1][0]
    probe: Any = next(m for t, _, m in samples("recovery-probe") if t == topic)
    probe.occurred_at.FromDatetime(at)  # within the backlog's time (`_within`)
    out: dict[str, float] = {}
    for case, wipe in (("same_pod", False), ("new_pod", True)):
        t0 = time.monotonic()
        local.kill(p.inst, s)
        if wipe:
            import shutil

            shutil.rmtree(p.inst.home / "state" / s, ignore_errors=True)
        p.start(s)
        await asyncio.to_thread(local.wait_ready, p.inst, s, 600)
        ready = time.monotonic() - t0
        producer = AIOKafkaProducer(bootstrap_servers=p.kafka, acks="all")
        await producer.start()
        try:
            for part in range(spec(topic).partitions):
                probe.event_id = f"recovery-{case}-{part}-{uuid.uuid4().hex[:6]}"
                await producer.send_and_wait(
                    topic, probe.SerializeToString(), key=probe.customer_id.encode(), partition=part
                )
        finally:
            await producer.stop()
        left = await lag.of(s, p.dbs)
        while left > 0 and time.monotonic() - t0 < 600:
            await asyncio.sleep(0.25)
            left = await lag.of(s, p.dbs)
        handling = time.monotonic() - t0
        out[f"{s}_recovery_{case}_ready_s"] = ready
        out[f"{s}_recovery_{case}_handling_s"] = handling
        print(
            f"e2e: {s} after kill -9 ({case.replace('_', ' ')}): ready in {ready:.1f}s, "
            f"handling records again in {handling:.1f}s"
        )
    return out


async def profile(p: Platform, seconds: float) -> dict[str, str]:
    """py-spy on each stream service at once; the heaviest frames by own time."""
    spy = pathlib.Path(sys.executable).with_name("py-spy")
    procs = {}
    for s in STREAM:
        pid = p.pid(s)
        if pid is None:
            continue
        raw = RESULTS / f"profile-{s}.txt"
        cmd = [str(spy), "record", "--format", "raw", "--nonblocking", "-r", "50"]
        cmd += ["-d", str(int(seconds)), "-p", str(pid), "-o", str(raw)]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        procs[s] = (proc, raw)
    heaviest: dict[str, str] = {}
    for s, (proc, raw) in procs.items():
        _, err = await proc.communicate()
        if proc.returncode != 0 or not raw.exists():
            heaviest[s] = f"py-spy failed: {err.decode()[:200]}"
            continue
        own: collections.Counter[str] = collections.Counter()
        ours: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue  # not a sample line (py-spy writes a note or two)
            frames = stack.split(";")
            total += int(n)
            # uvloop is C: its own time (I/O, waiting) shows as the loop's Python frame.
            last = frames[-1]
            own["event loop (uvloop)" if last.startswith("run (asyncio/runners") else last] += int(
                n
            )
            for f in {f for f in frames if f.split("(", 1)[-1].startswith(OURS)}:
                ours[f] += int(n)
        total = max(total, 1)
        top = ["own time:"] + [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(15)]
        top += ["time in (hvc frames, inclusive):"]
        top += [f"{100 * n / total:5.1f}% {f}" for f, n in ours.most_common(15)]
        (RESULTS / f"profile-{s}-top.txt").write_text("\n".join(top) + "\n")
        rest = [(f, n) for f, n in own.most_common() if f != "event loop (uvloop)"]
        heaviest[s] = f"{100 * rest[0][1] / total:.1f}% {rest[0][0]}" if rest else ""
    return heaviest


class Output(NamedTuple):
    topic: str
    ts: int  # its timestamp, ms
    coord: str  # its own topic/partition/offset
    root: int | None  # the publication time (ms) of the upstream record at the chain's root
    due: bool  # a timer made it due (tracing.DUE), or one up its chain did


async def outputs(kafka: str, since: dict[Any, int]) -> list[Output]:
    """Each output record, with the root of its chain of causes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    ends = await consumer.end_offsets(list(since))
    rows: list[tuple[str, int, str, tuple[str, int] | None, bool]] = []
    try:
        consumer.assign(list(since))
        for tp, off in since.items():
            consumer.seek(tp, off)
        left = {tp for tp in since if ends[tp] > since[tp]}
        while left:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for tp, records in batch.items():
                for r in records:
                    coord = f"{tp.topic}/{tp.partition}/{r.offset}"
                    due = tracing.parse_due(r.headers) is not None
                    rows.append((tp.topic, r.timestamp, coord, tracing.parse(r.headers), due))
                    if r.offset + 1 >= ends[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    causes = {coord: (cause, due) for _, _, coord, cause, due in rows}

    def root(cause: tuple[str, int] | None, due: bool) -> tuple[int | None, bool]:
        for _ in range(5):  # a decision's cause may itself be a decision (tiering → benefits)
            if cause is None:
                return None, due
            upstream = causes.get(cause[0])
            if upstream is None:
                return cause[1], due
            cause, due = upstream[0], due or upstream[1]
        return None, due

    return [Output(t, ts, coord, *root(cause, due)) for t, ts, coord, cause, due in rows]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def fixed_load(
    p: Platform, customers: int, rate: float, seconds: float, profile_s: float
) -> tuple[dict[str, float], dict[str, Any]]:
    since = await chaos.end_offsets(p.kafka, chaos.OUTPUTS)
    members = p.members()
    for _, s, i in members:
        p.start(s, i)
    for _, s, i in members:
        await asyncio.to_thread(local.wait_ready, p.where(i), s, 180)
    series: dict[str, Any] = {"t": [], **{s: [] for s in STREAM}}
    rss: dict[str, float] = {name: 0.0 for name, _, _ in members}
    heaviest: dict[str, str] = {}
    broker = local.Instance.named("bench")  # the broker and store, where they are ours
    p.feed(customers, FEED_DAYS, rate, seconds)
    cpu = CpuWatch(
        {
            **{name: p.pid(s, i) for name, s, i in members},
            "kafka": local.running_pid(broker, "kafka"),
            "ferretdb": local.running_pid(broker, "ferretdb"),
            "feed": p.pid("simulator"),
        }
    )
    series["cpu"] = []
    t0, wall0 = time.monotonic(), time.time()
    fed_at = None
    async with chaos.LagProbe(p.kafka) as lag:
        spy = None
        while True:
            now = time.monotonic() - t0
            series["t"].append(now)
            lags = {s: await lag.of(s, p.dbs) for s in STREAM}
            for s in STREAM:
                series[s].append(lags[s])
            series["cpu"].append(100 * cpu.tick())
            for name, s, i in members:
                rss[name] = max(rss[name], _status_kib(p.pid(s, i), "VmRSS") / 1024)
            if spy is None and profile_s > 0 and now >= seconds / 2 - profile_s / 2:
                spy = asyncio.create_task(profile(p, profile_s))
            if fed_at is None and not p.feeding():
                fed_at = time.monotonic()
            if fed_at is not None and not any(lags.values()):
                break
            if fed_at is not None and time.monotonic() - fed_at > 900:
                raise TimeoutError(f"lag still {lags} 15 minutes after the feed stopped")
            await asyncio.sleep(1.0)
        if spy is not None:
            try:
                heaviest = await spy
            except Exception as exc:  # a profile is a help, not a figure: keep the run
                heaviest = {"py-spy": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    assert fed_at is not None
    figures: dict[str, float] = {"e2e_lag_zero_after_feed_s": time.monotonic() - fed_at}
    figures["e2e_offered_events"] = float(p_sent(p))
    cpu.tick()
    figures["e2e_cpu_busy_pct"] = 100 * cpu.busy_share()
    figures["e2e_cpu_saturated_s"] = float(sum(1 for b in series["cpu"] if b >= 95))
    for name, used in sorted(cpu.used.items(), key=lambda kv: -kv[1]):
        figures[f"e2e_cpu_{name}_s"] = used
    for name, s, i in members:
        figures[f"{name}_e2e_peak_rss_mib"] = max(rss[name], p.peak_rss_mib(s, i))
    rows = await outputs(p.kafka, since)
    by_topic: dict[str, list[float]] = collections.defaultdict(list)
    timeline: list[tuple[float, float]] = []
    untraced: collections.Counter[str] = collections.Counter()
    for topic, ts, _, root_ts, _ in rows:
        if root_ts is None:
            untraced[topic] += 1
            continue
        by_topic[topic].append(ts - root_ts)
        timeline.append((ts / 1000, ts - root_ts))
    for topic, lat in sorted(by_topic.items()):
        short = topic.removeprefix("hvc.").removesuffix(".v1").replace("-", "_").replace(".", "_")
        figures[f"e2e_{short}_count"] = len(lat)
        figures[f"e2e_{short}_p50_ms"] = _pct(lat, 0.50)
        figures[f"e2e_{short}_p99_ms"] = _pct(lat, 0.99)
        figures[f"e2e_{short}_max_ms"] = max(lat)
    every = [x for lat in by_topic.values() for x in lat]
    figures["e2e_all_p99_ms"] = _pct(every, 0.99)
    figures.update(_tail_sources(rows, series, onboarding_events(customers), rate, wall0))
    figures["e2e_untraced_outputs"] = sum(untraced.values())
    return figures, {"series": series, "timeline": timeline, "heaviest": heaviest}


def _tail_sources(
    rows: list[Output], series: dict[str, Any], onboarding: int, rate: float, wall0: float
) -> dict[str, float]:
    """p50/p99 of the outputs told apart by where a tail comes from. By when their root was
    published: during the feed's onboarding and first day (every customer's profile, plan and
    first bill at once), while the services caught up with it (until their lag first fell
    under a second of the offered load), and after (steady). And by what made them: an event,
    or a timer (`hvc-due`: a month's close, a bill's due day)."""
    start = min((o.root for o in rows if o.root is not None), default=0)
    onboarded = start + onboarding / rate * 1000
    after = (onboarded / 1000 - wall0) if start else 0.0
    caught_up = next(
        (
            t
            for i, t in enumerate(series["t"])
            if t >= after and sum(series[s][i] for s in STREAM) < rate
        ),
        series["t"][-1] if series["t"] else 0.0,
    )
    steady_from = (wall0 + caught_up) * 1000
    figures = {"e2e_onboarding_events": float(onboarding), "e2e_caught_up_s": caught_up}
    phases: dict[str, Callable[[Output, int], bool]] = {
        "onboarding": lambda o, r: r < onboarded,
        "catch_up": lambda o, r: onboarded <= r < steady_from,
        "steady": lambda o, r: r >= steady_from,
        "steady_event_driven": lambda o, r: r >= steady_from and not o.due,
        "steady_timer_driven": lambda o, r: r >= steady_from and o.due,
        "event_driven": lambda o, r: not o.due,
        "timer_driven": lambda o, r: o.due,
    }
    for phase, inside in phases.items():
        lat = [float(o.ts - o.root) for o in rows if o.root is not None and inside(o, o.root)]
        figures[f"e2e_{phase}_outputs"] = float(len(lat))
        figures[f"e2e_{phase}_p50_ms"] = _pct(lat, 0.50)
        figures[f"e2e_{phase}_p99_ms"] = _pct(lat, 0.99)
    return figures


def onboarding_events(customers: int) -> int:
    """How many events the feed publishes before its second simulated day: the onboarding
    (groups, profiles, plans) and the first day, whose accounts open for every customer at
    once, of the world `Platform.feed` plays (`FEED_SEED`, `FEED_DAYS`)."""
    from hvc.simulator.world import Options, World

    world = World(Options(customers=customers, seed=FEED_SEED, days=FEED_DAYS))
    return sum(1 for _ in world.onboarding()) + sum(1 for _ in world.day(0))


def p_sent(p: Platform) -> int:
    """The simulator's last line: {"events": n, ...}."""
    import json

    for line in reversed((p.inst.logs / "simulator.log").read_text().splitlines()):
        if line.startswith("{"):
            return int(json.loads(line)["events"])
    return 0


def plot(path: pathlib.Path, series: dict[str, Any], timeline: list[tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax3, ax2) = plt.subplots(3, 1, figsize=(10, 10), sharex=False)
    for s in STREAM:
        ax1.plot(series["t"], series[s], label=s)
    ax1.set_ylabel("consumer lag (records)")
    ax1.set_xlabel("seconds since the feed started")
    ax1.legend()
    ax3.plot(series["t"], series.get("cpu", [0.0] * len(series["t"])), color="grey")
    ax3.set_ylim(0, 105)
    ax3.set_ylabel("CPU busy (% of all cores)")
    ax3.set_xlabel("seconds since the feed started")
    if timeline:
        start = min(t for t, _ in timeline)
        buckets: dict[int, list[float]] = collections.defaultdict(list)
        for t, lat in timeline:
            buckets[int(t - start)].append(lat)
        xs = sorted(buckets)
        ax2.plot(xs, [_pct(buckets[x], 0.5) for x in xs], label="p50")
        ax2.plot(xs, [_pct(buckets[x], 0.99) for x in xs], label="p99")
        ax2.set_yscale("log")
    ax2.set_ylabel("publish → decision (ms)")
    ax2.set_xlabel("seconds since the first decision")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(
    figures: dict[str, Any],
    kafka: str,
    mongo: str,
    *,
    raw_consume_rate: float,
    backlog_customers: int,
    backlog_days: int,
    customers: int,
    rate: float,
    seconds: float,
    profile_s: float,
    drain_cap_s: float = 300.0,
    service_env: Mapping[str, str] | None = None,
    replicas: Mapping[str, int] | None = None,
) -> None:
    """Adds the figures to `figures` as each phase ends (a failing phase keeps the others').
    `service_env`: settings every service starts with, to measure one against its default."""
    RESULTS.mkdir(exist_ok=True)
    # the backlog's services alone, one process each; the fixed load's with `replicas`
    p = Platform(kafka, mongo, service_env, replicas if backlog_customers <= 0 else None)
    asyncio.run(chaos.groups_at_end(kafka, STREAM, p.dbs))
    try:
        if backlog_customers > 0:
            figures |= asyncio.run(
                backlog(p, backlog_customers, backlog_days, raw_consume_rate, drain_cap_s)
            )
            p.stop_all()
            p.drop_stores()
            p = Platform(kafka, mongo, service_env, replicas)
            asyncio.run(chaos.groups_at_end(kafka, STREAM, p.dbs))
        extra: dict[str, Any] = {"heaviest": {}}
        if seconds > 0:
            load, extra = asyncio.run(fixed_load(p, customers, rate, seconds, profile_s))
            figures |= load
    finally:
        p.stop_all()
        p.drop_stores()
    if seconds <= 0:
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    png = RESULTS / f"e2e-{stamp}.png"
    plot(png, extra["series"], extra["timeline"])
    print(f"e2e: lag and latency plot: {png}")
    for s, frame in extra["heaviest"].items():
        print(f"e2e: {s} heaviest frame (own time): {frame}")
