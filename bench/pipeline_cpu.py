"""Each stream service's own work per record, without the broker, the engine or the store: its
handler through `Pipeline.step` on partitions in memory (`MemoryPartition`, no state
serialisation), over the simulator's onboarding and days, on one core. What a service sends
to itself (tiering's commands, warnings' copies and signals) is fed back after the record that
sent it; tiering runs first, and its tier decisions go to warnings, benefits and complaints
after the record that caused them, as the broker would deliver them. Complaints files without
waiting for tiering (`Open`: there is no tiering group to wait for here).

This is a ceiling, not a rate the services reach: on the engine each record costs this plus
the engine's own work (consume, state (de)serialisation, changelog, checkpoint) and the views'
store writes. It says how far a target stated against the broker's raw consume rate is from
the rules' own cost in Python.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from engine_spike import murmur2_partition

from hvc.common import topics
from hvc.common.clock import EventClock
from hvc.common.streams import MemoryPartition, Pipeline, Record
from hvc.simulator.world import Options, World

Rec = tuple[str, str, bytes, int]  # topic, key, value, timestamp (ms)


def _tiering() -> Pipeline:
    from hvc.tiering.domain.rules import DEFAULT_RULESETS, load_rulebook
    from hvc.tiering.pipeline import INPUTS, TieringHandler

    return Pipeline.of("tiering", INPUTS, TieringHandler(load_rulebook([DEFAULT_RULESETS])))


def _warnings() -> Pipeline:
    from hvc.warnings import pipeline
    from hvc.warnings.domain.rules import load_rules
    from hvc.warnings.settings import WarningsSettings

    s = WarningsSettings()
    handler = pipeline.WarningsHandler(
        load_rules(s.rules_file), s.close_grace_seconds, s.usage_lateness_seconds
    )
    return Pipeline.of("warnings", pipeline.INPUTS, handler)


def _benefits() -> Pipeline:
    from hvc.benefits import pipeline
    from hvc.benefits.domain.catalogue import load_catalogue
    from hvc.benefits.settings import BenefitsSettings

    s = BenefitsSettings()
    handler = pipeline.BenefitsHandler(
        load_catalogue(s.catalogue_file), s.close_grace_seconds, EventClock(wall=False)
    )
    return Pipeline.of("benefits", pipeline.INPUTS, handler)


def _complaints() -> Pipeline:
    from hvc.common import workcal
    from hvc.complaints import pipeline
    from hvc.complaints.domain.policy import load_policies
    from hvc.complaints.domain.roster import load_roster
    from hvc.complaints.settings import ComplaintsSettings

    s = ComplaintsSettings()
    policies = load_policies(s.policy_dir, workcal.load(s.working_calendar_file))
    handler = pipeline.ComplaintsHandler(
        policies, pipeline.Open(), EventClock(wall=False), load_roster(s.roster_file)
    )
    return Pipeline.of("complaints", pipeline.INPUTS, handler)


SERVICES: dict[str, Callable[[], Pipeline]] = {
    "tiering": _tiering,
    "warnings": _warnings,
    "benefits": _benefits,
    "complaints": _complaints,
}


def world_records(customers: int, days: int) -> list[Rec]:
    """The simulator's records in publication order, each stamped with its event time."""
    w = World(Options(customers=customers, days=days))
    out: list[Rec] = []
    ts = int(time.mktime(w.o.start.timetuple()) * 1000)
    events = [*w.onboarding()]
    for d in range(days):
        events += w.day(d)
    for topic, key, message in events:
        at = getattr(message, "occurred_at", None)
        if at is not None and at.seconds:
            ts = max(ts, at.ToMilliseconds())
        out.append((topic, key, message.SerializeToString(), ts))
    return out


def drain(pipe: Pipeline, records: list[Rec]) -> tuple[int, float, list[Rec]]:
    """Every record of the pipeline's inputs through it: (records handled, seconds, the
    records as the next service reads them: each input followed by what it sent)."""
    inputs = set(pipe.messages)
    parts: dict[int, MemoryPartition] = collections.defaultdict(MemoryPartition)
    sent: list[tuple[str, Any, bytes]] = []

    def produce(topic: str, key: Any, value: bytes | None, _headers: Any) -> None:
        if value is not None:
            sent.append((topic, key, value))

    merged: list[Rec] = []
    handled, offset = 0, 0
    t0 = time.process_time()
    for rec in records:
        queue = collections.deque([rec])
        while queue:
            topic, key, value, ts = item = queue.popleft()
            merged.append(item)
            if topic not in inputs:
                continue
            offset += 1
            # Where the broker puts it: warnings' copies to every partition are keyed for
            # Kafka's partitioner (hvc.common.topics.partition_keys).
            p = murmur2_partition(key.encode(), topics.spec(topic).partitions) if key else 0
            pipe.step(parts[p], Record(topic, p, offset, ts, key.encode()), value, produce)
            handled += 1
            for t, k, v in sent:
                kk = k.decode() if isinstance(k, bytes) else (k or "")
                queue.append((t, kk, v, ts))
            sent.clear()
    return handled, time.process_time() - t0, merged


def run(customers: int = 20_000, days: int = 3, raw_rate: float = 0.0) -> dict[str, float]:
    records = world_records(customers, days)
    print(f"pipeline cpu: {len(records):,} records of {customers:,} customers over {days} days")
    figures: dict[str, float] = {}
    for name, make in SERVICES.items():
        n, cpu_s, merged = drain(make(), records)
        if name == "tiering":
            records = merged  # its decisions, for the others
        rate = n / cpu_s if cpu_s else 0.0
        ratio = f", {rate / raw_rate:.3f} of the raw consume rate" if raw_rate else ""
        print(
            f"pipeline cpu: {name} {n:,} records in {cpu_s:.2f} s of CPU: "
            f"{rate:,.0f} records/s, {cpu_s / max(n, 1) * 1e6:.0f} µs a record{ratio}"
        )
        figures[f"{name}_pipeline_cpu_records_per_s"] = rate
        figures[f"{name}_pipeline_cpu_us_per_record"] = cpu_s / max(n, 1) * 1e6
    return figures
