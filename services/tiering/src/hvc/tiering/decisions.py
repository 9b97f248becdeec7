"""What a decision is as a document and a message, and what tiering's HTTP side and annual
run send its pipeline (hvc.tiering.pipeline), which alone decides.

A decision's document (`tier_history`, insert-only) is keyed by (customer, effective instant,
sequence); its event id names the customer, the instant, the sequence and the tier, so the
pipeline publishes the same ids however often a record is handled. It keeps the input record
that caused it (hvc.tracing): complaints tell from it whether a decision was known when a
complaint was filed.

An override (HTTP) or an annual result (the annual run) is stored by its writer first
(override_log; annual_results and annual_in_force), then sent as a command on
hvc.tiering-commands.v1, keyed by the customer: the pipeline folds it into the customer's
facts and publishes what the timeline owes. Sending again what was sent (a retry, a re-run)
changes nothing there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hvc.common import tracing
from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.common.topics import TIERING_COMMANDS
from hvc.events.v1 import common_pb2, tiering_pb2
from hvc.tiering.domain.model import AnnualResult, CustomerFacts, GroupSnapshot, Override
from hvc.tiering.domain.rules import RuleBook
from hvc.tiering.domain.scoring import evaluate_annual
from hvc.tiering.domain.timeline import Decision, decisions_owed, instant_key, timeline
from hvc.tiering.repository import SEP, Repository, annual_doc, from_docs

log = logging.getLogger(__name__)

TOPIC = "hvc.tier-decisions.v1"

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def annual_in_force(facts: CustomerFacts, at: dt.datetime) -> AnnualResult | None:
    valid = [a for a in facts.annual.values() if a.valid_from <= at]
    return max(valid, key=lambda a: a.valid_from) if valid else None


def history_doc(
    d: Decision, facts: CustomerFacts, now: dt.datetime, cause: tracing.Cause | None
) -> dict[str, Any]:
    """A decision's document: everything its message carries, and the record that caused
    it (None: a decision of its own, such as a bench's)."""
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
        "cause": (
            None
            if cause is None
            else [cause.topic, cause.partition, cause.offset, cause.timestamp_ms]
        ),
    }


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
class Commands:
    """What tiering's HTTP side and annual run send its pipeline."""

    repo: Repository
    book: RuleBook
    send: Send
    clock: Clock = wall_clock

    async def _send(self, customer_id: str, event_id: str, **payload: Any) -> None:
        c = tiering_pb2.TieringCommand(event_id=event_id, customer_id=customer_id, **payload)
        c.occurred_at.FromDatetime(self.clock())
        with tracing.caused_by(None):
            await self.send(
                TIERING_COMMANDS,
                customer_id.encode(),
                codec_for(TIERING_COMMANDS).serialize(c),
                [],
            )

    async def override(self, customer_id: str, o: Override) -> None:
        m = tiering_pb2.OverrideSet(
            override_id=o.override_id,
            tier=common_pb2.Tier.Value(o.tier.name),
            reason=o.reason,
            set_by=o.by,
        )
        m.set_at.FromDatetime(o.set_at)
        m.expires_at.FromDatetime(o.expires_at)
        await self._send(customer_id, o.override_id, override_set=m)

    async def annual(self, customer_id: str, a: AnnualResult) -> None:
        m = tiering_pb2.AnnualAssessed(
            year=a.year,
            as_of=common_pb2.Date(year=a.as_of.year, month=a.as_of.month, day=a.as_of.day),
            ruleset_version=a.ruleset_version,
            consumption_points=a.consumption_points,
            tenure_points=a.tenure_points,
            tenure_years=a.tenure_years,
            score=a.score,
            tier=common_pb2.Tier.Value(a.tier.name),
        )
        m.valid_from.FromDatetime(a.valid_from)
        content = f"{customer_id}|{a.year}|{a.ruleset_version}|{a.score}|{a.tier.name}"
        event_id = "ann-" + hashlib.sha256(content.encode()).hexdigest()[:32]
        await self._send(customer_id, event_id, annual_assessed=m)

    async def expected(self, customer_id: str, facts: CustomerFacts) -> list[Decision]:
        """The decisions the pipeline publishes for these facts, against those the
        `tier_history` view holds (the same ids, once it has caught up)."""
        history = await self.repo.history_docs(customer_id)
        _, emitted = from_docs({"_id": customer_id}, (), history)
        groups = await self.repo.groups_for(facts)
        return decisions_owed(customer_id, timeline(facts, groups, self.book), emitted)


@dataclass
class AnnualRunStats:
    year: int
    as_of: dt.date
    ruleset_version: str
    customers: int = 0
    assessed: int = 0
    changed_results: int = 0
    decisions: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


async def run_annual(
    commands: Commands, year: int, as_of: dt.date, *, batch_size: int = 1000
) -> AnnualRunStats:
    """Score every customer for `year` from the views; store the new results and send them
    to the pipeline, which decides.

    Re-runnable: an equal result is the same document (its `_id` names its content) and is
    not sent again, unless the timeline with it still owes decisions against `tier_history`
    (a run cut off between storing and sending, or a pipeline that has not caught up): then
    the result in force is sent again, which the pipeline takes once. `decisions` counts what
    the results make the pipeline publish, as computed from the views.
    """
    book, repo = commands.book, commands.repo
    rules = book.at_date(as_of)
    stats = AnnualRunStats(year, as_of, rules.version)
    key = str(year)
    groups: dict[str, list[GroupSnapshot]] = await repo.all_groups()
    # (customer, result, new, has results in force already): a batch's, not the run's
    pending: list[tuple[str, AnnualResult, bool, bool]] = []

    async def flush() -> None:
        now = commands.clock()
        new = [(c, r, known) for c, r, is_new, known in pending if is_new]
        await repo.put_annual(
            [annual_doc(c, r, now) for c, r, _ in new], known={c for c, _, k in new if k}
        )
        await asyncio.gather(*(commands.annual(c, r) for c, r, _, _ in pending))
        pending.clear()

    async for doc, annual, history in repo.scan():
        stats.customers += 1
        facts, emitted = from_docs(doc, annual, history)
        known = bool(facts.annual)
        result = evaluate_annual(facts, year, as_of, rules)
        if result is None:
            continue
        stats.assessed += 1
        stats.by_tier[result.tier.name] = stats.by_tier.get(result.tier.name, 0) + 1
        is_new = not _same(facts.annual.get(key), result)
        if is_new:
            stats.changed_results += 1
        else:
            result = facts.annual[key]  # the one in force, as stored
        facts.annual[key] = result
        owed = decisions_owed(facts.customer_id, timeline(facts, groups, book), emitted)
        stats.decisions += len(owed)
        if is_new or owed:
            pending.append((facts.customer_id, result, is_new, known))
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
