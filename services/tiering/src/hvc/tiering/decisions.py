"""Turning facts into published decisions: settle one customer, or run a whole annual evaluation.

Order of effects: publish (wait for the broker), then append history and record what was
emitted under the customer's `rev`. A crash in between re-publishes the same decisions with the
same event ids; a lost race recomputes from the newer facts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.events.v1 import common_pb2, tiering_pb2
from hvc.tiering.domain.model import AnnualResult, CustomerFacts
from hvc.tiering.domain.rules import RuleBook
from hvc.tiering.domain.scoring import evaluate_annual
from hvc.tiering.domain.timeline import Decision, Emitted, decisions_owed, timeline
from hvc.tiering.repository import Repository, annual_to_doc, from_doc

log = logging.getLogger(__name__)

TOPIC = "hvc.tier-decisions.v1"
MAX_RACES = 10

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def annual_in_force(facts: CustomerFacts, at: dt.datetime) -> AnnualResult | None:
    valid = [a for a in facts.annual.values() if a.valid_from <= at]
    return max(valid, key=lambda a: a.valid_from) if valid else None


def to_message(d: Decision, facts: CustomerFacts, now: dt.datetime) -> tiering_pb2.TierDecided:
    p = d.point
    m = tiering_pb2.TierDecided(
        event_id=d.event_id,
        customer_id=d.customer_id,
        old_tier=common_pb2.Tier.Value(p.old_tier.name),
        new_tier=common_pb2.Tier.Value(p.new_tier.name),
        source=tiering_pb2.TierDecided.Source.Value(p.source.value),
        ruleset_version=p.ruleset_version,
    )
    m.occurred_at.FromDatetime(now)
    m.effective_from.FromDatetime(p.at)
    annual = annual_in_force(facts, p.at)
    if annual is not None:
        m.consumption_points = annual.consumption_points
        m.tenure_points = annual.tenure_points
        m.score = annual.score
    return m


def history_doc(d: Decision, facts: CustomerFacts, now: dt.datetime) -> dict[str, Any]:
    p = d.point
    annual = annual_in_force(facts, p.at)
    return {
        "_id": d.event_id,
        "customer_id": d.customer_id,
        "effective_from": p.at,
        "seq": d.seq,
        "old_tier": p.old_tier.name,
        "new_tier": p.new_tier.name,
        "source": p.source.value,
        "ruleset_version": p.ruleset_version,
        "detail": p.detail,
        "score": annual.score if annual else None,
        "decided_at": now,
    }


@dataclass
class Decider:
    repo: Repository
    book: RuleBook
    send: Send
    clock: Clock = wall_clock

    async def publish(
        self, items: Sequence[tuple[Decision, CustomerFacts]], now: dt.datetime
    ) -> None:
        codec = codec_for(TOPIC)
        await asyncio.gather(
            *(
                self.send(TOPIC, d.customer_id.encode(), codec.serialize(to_message(d, f, now)), [])
                for d, f in items
            )
        )

    async def settle(self, customer_id: str) -> list[Decision]:
        """Publish whatever the customer's timeline owes; safe to call any number of times."""
        async with self.repo.locks.hold(customer_id):
            for _ in range(MAX_RACES):
                loaded = await self.repo.load(customer_id)
                if loaded is None:
                    return []
                facts, emitted, rev = loaded
                groups = await self.repo.groups_for(facts)
                owed = decisions_owed(customer_id, timeline(facts, groups, self.book), emitted)
                if not owed:
                    return []
                now = self.clock()
                await self.publish([(d, facts) for d in owed], now)
                update = self.repo.emitted_update(customer_id, rev, owed)
                if await self.repo.record([update], [history_doc(d, facts, now) for d in owed]):
                    for d in owed:
                        log.info(
                            "tier decided",
                            extra={
                                "customer_id": customer_id,
                                "event_id": d.event_id,
                                "new_tier": d.point.new_tier.name,
                                "source": d.point.source.value,
                            },
                        )
                    return owed
        raise RuntimeError(f"customer {customer_id}: facts kept changing while settling")


@dataclass
class AnnualRunStats:
    year: int
    as_of: dt.date
    ruleset_version: str
    customers: int = 0
    assessed: int = 0
    changed_results: int = 0
    decisions: int = 0
    retried: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


async def run_annual(
    decider: Decider, year: int, as_of: dt.date, *, batch_size: int = 1000
) -> AnnualRunStats:
    """Score every customer for `year`; store changed results and publish what they change.

    Re-runnable: a result equal to the stored one (same score, tier and rule set) is skipped,
    so a second run over the same inputs writes and emits nothing.
    """
    rules = decider.book.at_date(as_of)
    stats = AnnualRunStats(year, as_of, rules.version)
    key = str(year)
    groups = await decider.repo.all_groups()
    pending: list[tuple[str, int, CustomerFacts, dict[str, Emitted], AnnualResult]] = []

    async def flush() -> None:
        ids = [cid for cid, *_ in pending]
        async with decider.repo.locks.hold(*ids):
            now = decider.clock()
            updates: list[UpdateOne] = []
            history: list[dict[str, Any]] = []
            publish: list[tuple[Decision, CustomerFacts]] = []
            for cid, rev, facts, emitted, result in pending:
                facts.annual[key] = result
                owed = decisions_owed(cid, timeline(facts, groups, decider.book), emitted)
                publish.extend((d, facts) for d in owed)
                history.extend(history_doc(d, facts, now) for d in owed)
                updates.append(
                    decider.repo.emitted_update(
                        cid, rev, owed, {f"annual.{key}": annual_to_doc(result)}
                    )
                )
            await decider.publish(publish, now)
            stats.decisions += len(publish)
            matched = await decider.repo.record(updates, history)
        if matched < len(updates):
            # Some customers changed since they were read: redo those from fresh facts.
            for cid in ids:
                stats.retried += await _redo_one(decider, cid, year, as_of)
        pending.clear()

    async for doc in decider.repo.scan():
        stats.customers += 1
        facts, emitted, rev = from_doc(doc)
        result = evaluate_annual(facts, year, as_of, rules)
        if result is None:
            continue
        stats.assessed += 1
        stats.by_tier[result.tier.name] = stats.by_tier.get(result.tier.name, 0) + 1
        if _same(facts.annual.get(key), result):
            continue
        stats.changed_results += 1
        pending.append((facts.customer_id, rev, facts, emitted, result))
        if len(pending) >= batch_size:
            await flush()
    if pending:
        await flush()
    return stats


def _same(old: AnnualResult | None, new: AnnualResult) -> bool:
    return old is not None and (
        old.score,
        old.tier,
        old.ruleset_version,
        old.consumption_points,
        old.tenure_points,
    ) == (new.score, new.tier, new.ruleset_version, new.consumption_points, new.tenure_points)


async def _redo_one(decider: Decider, customer_id: str, year: int, as_of: dt.date) -> int:
    loaded = await decider.repo.load(customer_id)
    if loaded is None:
        return 0
    facts, _, _ = loaded
    result = evaluate_annual(facts, year, as_of, decider.book.at_date(as_of))
    if result is None or _same(facts.annual.get(str(year)), result):
        return 0
    async with decider.repo.locks.hold(customer_id):
        await decider.repo.customers.update_one(
            {"_id": customer_id},
            {"$set": {f"annual.{year}": annual_to_doc(result)}, "$inc": {"rev": 1}},
        )
    await decider.settle(customer_id)
    return 1
