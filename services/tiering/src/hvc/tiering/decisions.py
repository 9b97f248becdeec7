"""Turning facts into published decisions: settle one customer, or run a whole annual evaluation.

A decision is claimed before it is published: its history document, keyed by (customer,
effective instant, sequence), is inserted, and only the writer whose insert succeeded
publishes it. Publication is then recorded by another insert. A crash between claim and
record leaves a claimed, unpublished decision, which the next settle of that customer
publishes (same event id: consumers de-duplicate). Nothing here updates a document in place.

The claim keeps the input record that caused the decision (hvc.common.tracing), and the
decision is published naming that cause whenever it is published: complaints tell from it
whether a decision was known when a complaint was filed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvc.common import tracing
from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.events.v1 import common_pb2, tiering_pb2
from hvc.tiering.domain.model import AnnualResult, CustomerFacts, GroupSnapshot
from hvc.tiering.domain.rules import RuleBook
from hvc.tiering.domain.scoring import evaluate_annual
from hvc.tiering.domain.timeline import Decision, Emitted, decisions_owed, instant_key, timeline
from hvc.tiering.repository import SEP, Repository, annual_doc, from_docs

log = logging.getLogger(__name__)

TOPIC = "hvc.tier-decisions.v1"
MAX_RACES = 10

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def annual_in_force(facts: CustomerFacts, at: dt.datetime) -> AnnualResult | None:
    valid = [a for a in facts.annual.values() if a.valid_from <= at]
    return max(valid, key=lambda a: a.valid_from) if valid else None


def history_doc(d: Decision, facts: CustomerFacts, now: dt.datetime) -> dict[str, Any]:
    """The claim of a decision: everything its message carries, keyed by its cause."""
    p = d.point
    annual = annual_in_force(facts, p.at)
    return {
        "_id": f"{d.customer_id}{SEP}{instant_key(p.at)}{SEP}{d.seq}",
        "event_id": d.event_id,
        "customer_id": d.customer_id,
        "effective_from": p.at,
        "seq": d.seq,
        "old_tier": p.old_tier.name,
        "new_tier": p.new_tier.name,
        "source": p.source.value,
        "ruleset_version": p.ruleset_version,
        "detail": p.detail,
        "consumption_points": annual.consumption_points if annual else 0,
        "tenure_points": annual.tenure_points if annual else 0,
        "score": annual.score if annual else None,
        "decided_at": now,
        "cause": _cause_doc(tracing.current()),
    }


def _cause_doc(cause: tracing.Cause | None) -> list[Any] | None:
    return (
        None if cause is None else [cause.topic, cause.partition, cause.offset, cause.timestamp_ms]
    )


def _cause(h: dict[str, Any]) -> tracing.Cause | None:
    """The record that caused a claimed decision (None: a run of its own, or an old claim)."""
    c = h.get("cause")
    return None if not c else tracing.Cause(str(c[0]), int(c[1]), int(c[2]), int(c[3]))


def to_message(h: dict[str, Any]) -> tiering_pb2.TierDecided:
    m = tiering_pb2.TierDecided(
        event_id=h["event_id"],
        customer_id=h["customer_id"],
        old_tier=common_pb2.Tier.Value(h["old_tier"]),
        new_tier=common_pb2.Tier.Value(h["new_tier"]),
        source=tiering_pb2.TierDecided.Source.Value(h["source"]),
        ruleset_version=h["ruleset_version"],
        consumption_points=h["consumption_points"],
        tenure_points=h["tenure_points"],
        score=h["score"] or 0,
    )
    m.occurred_at.FromDatetime(h["decided_at"])
    m.effective_from.FromDatetime(h["effective_from"])
    return m


@dataclass
class Decider:
    repo: Repository
    book: RuleBook
    send: Send
    clock: Clock = wall_clock

    async def publish(self, claimed: Sequence[dict[str, Any]]) -> None:
        """Publish claimed decisions, wait for the broker, then record them as published."""
        if not claimed:
            return
        codec = codec_for(TOPIC)

        async def one(h: dict[str, Any]) -> None:
            with tracing.caused_by(_cause(h)):  # its own cause, whichever record is in hand
                await self.send(
                    TOPIC, h["customer_id"].encode(), codec.serialize(to_message(h)), []
                )

        await asyncio.gather(*(one(h) for h in claimed))
        await self.repo.mark_published((h["event_id"] for h in claimed), self.clock())
        for h in claimed:
            log.info(
                "tier decided",
                extra={
                    "customer_id": h["customer_id"],
                    "event_id": h["event_id"],
                    "new_tier": h["new_tier"],
                    "source": h["source"],
                },
            )

    async def settle(self, customer_id: str) -> list[Decision]:
        """Publish whatever the customer's timeline owes; safe to call any number of times."""
        async with self.repo.locks.hold(customer_id):
            for _ in range(MAX_RACES):
                state = await self.repo.load(customer_id)
                if state is None:
                    return []
                await self.publish(state.unpublished)
                groups = await self.repo.groups_for(state.facts)
                points = timeline(state.facts, groups, self.book)
                owed = decisions_owed(customer_id, points, state.emitted)
                if not owed:
                    return []
                docs = [history_doc(d, state.facts, self.clock()) for d in owed]
                claimed = await self.repo.claim(docs)
                await self.publish([h for h in docs if h["_id"] in claimed])
                if len(claimed) == len(docs):
                    return owed
                # Another writer claimed some of these first: recompute from what it stored.
        raise RuntimeError(f"customer {customer_id}: decisions kept racing while settling")


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


@dataclass
class _Pending:
    customer_id: str
    facts: CustomerFacts
    emitted: dict[str, Emitted]
    result: AnnualResult | None


async def run_annual(
    decider: Decider, year: int, as_of: dt.date, *, batch_size: int = 1000
) -> AnnualRunStats:
    """Score every customer for `year`; store new results and publish what they change.

    Re-runnable: an equal result is the same document (its `_id` names its content), and the
    decisions are computed from the stored ones, so a second run writes and emits nothing.
    Every customer's owed decisions are settled, so a run cut off between storing results and
    publishing is completed by the next run.
    """
    rules = decider.book.at_date(as_of)
    stats = AnnualRunStats(year, as_of, rules.version)
    key = str(year)
    groups: dict[str, list[GroupSnapshot]] = await decider.repo.all_groups()
    pending: list[_Pending] = []

    async def flush() -> None:
        ids = [p.customer_id for p in pending]
        async with decider.repo.locks.hold(*ids):
            now = decider.clock()
            results = [annual_doc(p.customer_id, p.result, now) for p in pending if p.result]
            await decider.repo.put_annual(
                results, known={p.customer_id for p in pending if p.facts.annual}
            )
            docs: list[dict[str, Any]] = []
            for p in pending:
                if p.result is not None:
                    p.facts.annual[key] = p.result
                owed = decisions_owed(
                    p.customer_id, timeline(p.facts, groups, decider.book), p.emitted
                )
                docs.extend(history_doc(d, p.facts, now) for d in owed)
            claimed = await decider.repo.claim(docs)
            await decider.publish([h for h in docs if h["_id"] in claimed])
            stats.decisions += len(claimed)
            raced = {h["customer_id"] for h in docs if h["_id"] not in claimed}
        for customer_id in sorted(raced):
            # Another writer decided for these meanwhile: settle them from the stored state.
            stats.retried += 1
            stats.decisions += len(await decider.settle(customer_id))
        pending.clear()

    async for doc, annual, history in decider.repo.scan():
        stats.customers += 1
        facts, emitted = from_docs(doc, annual, history)
        result = evaluate_annual(facts, year, as_of, rules)
        if result is not None:
            stats.assessed += 1
            stats.by_tier[result.tier.name] = stats.by_tier.get(result.tier.name, 0) + 1
            if _same(facts.annual.get(key), result):
                result = None
            else:
                stats.changed_results += 1
        # Unpublished claims are left to settle(); here only what the timeline still owes.
        if result is None and not decisions_owed(
            facts.customer_id, timeline(facts, groups, decider.book), emitted
        ):
            continue
        pending.append(_Pending(facts.customer_id, facts, emitted, result))
        if len(pending) >= batch_size:
            await flush()
    if pending:
        await flush()
    return stats


def _same(old: AnnualResult | None, new: AnnualResult) -> bool:
    return old is not None and (
        old.tier,
        old.ruleset_version,
        old.consumption_points,
        old.tenure_points,
    ) == (new.tier, new.ruleset_version, new.consumption_points, new.tenure_points)
