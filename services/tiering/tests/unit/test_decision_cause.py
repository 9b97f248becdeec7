"""A decision names the input record that caused it whenever it is published: complaints tell
from it whether the decision was known when a complaint was filed."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from hvc.common import tracing
from hvc.tiering.decisions import Decider

AT = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def claimed(event_id: str, cause: list[Any] | None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": "C1",
        "old_tier": "NONE",
        "new_tier": "GOLD",
        "source": "PLAN",
        "ruleset_version": "x",
        "consumption_points": 0,
        "tenure_points": 0,
        "score": None,
        "decided_at": AT,
        "effective_from": AT,
        "cause": cause,
    }


class Repo:
    async def mark_published(self, ids: Any, at: dt.datetime) -> None:
        list(ids)


def test_a_claimed_decision_is_published_naming_its_own_cause_not_the_record_in_hand():
    seen: dict[str, list[tuple[str, bytes]]] = {}

    async def send(topic: str, key: bytes, value: bytes, headers: list[Any]) -> None:
        from hvc.events.v1 import tiering_pb2

        seen[tiering_pb2.TierDecided.FromString(value).event_id] = tracing.headers()

    decider = Decider(Repo(), book=None, send=send)  # type: ignore[arg-type]
    in_hand = tracing.Cause("billing.accounts.v1", 1, 7, 2_000)
    own = ["crm.customers.v1", 3, 42, 1_000]

    async def run() -> None:
        with tracing.caused_by(in_hand):  # a later settle publishes what a crash left claimed
            await decider.publish([claimed("d1", own), claimed("d2", None)])

    asyncio.run(run())
    assert tracing.parse(seen["d1"]) == ("crm.customers.v1/3/42", 1_000)
    assert seen["d2"] == []  # no cause known: none named, rather than the wrong one
