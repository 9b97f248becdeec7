"""Turning a signal into one warning, one retention task and one WarningRaised, whatever repeats.

Order: claim the warning (unique insert), open its task (unique insert), publish, mark
published. A redelivery finds the claim taken; if the mark is missing (a crash between claim
and mark) it completes the task and the publication with the same ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from hvc.common.codec import codec_for
from hvc.common.kafka import Send
from hvc.events.v1 import warnings_pb2
from hvc.warnings.assignment import Assigner
from hvc.warnings.directory import Directory
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.domain.signals import Signal
from hvc.warnings.repository import Repository

log = logging.getLogger(__name__)
TOPIC = "hvc.warnings.v1"


def warning_id(customer_id: str, signal: Signal) -> str:
    raw = f"{customer_id}|{signal.code.value}|{signal.period}"
    return "w-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass
class Raiser:
    repo: Repository
    rules: WarningRules
    send: Send
    assigner: Assigner
    directory: Directory

    async def raise_(self, customer_id: str, signal: Signal, detected_at: dt.datetime) -> bool:
        """Raise the warning if it is new; returns True when this call published it."""
        doc = warning_doc(
            customer_id, signal, detected_at, self.directory.tier(customer_id), self.rules
        )
        wid, level = doc["warning_id"], doc["level"]
        if not await self.repo.claim_warning(doc) and await self.repo.is_published(wid):
            return False
        manager = await self.assigner.manager_for(customer_id, self.directory.profile(customer_id))
        await self.repo.open_task(task_doc(doc, manager, self.rules))
        if manager is None:
            self.directory.unassigned.add(customer_id)
        message = warning_message(wid, customer_id, signal, level, detected_at, self.rules.version)
        await self.send(TOPIC, customer_id.encode(), codec_for(TOPIC).serialize(message), [])
        await self.repo.mark_published(wid, detected_at)
        log.info(
            "warning raised",
            extra={
                "customer_id": customer_id,
                "code": signal.code.value,
                "period": signal.period,
                "warning_id": wid,
            },
        )
        return True

    async def assign_waiting(self, customer_id: str) -> None:
        """A profile arrived for a customer whose tasks were opened without a manager."""
        manager = await self.assigner.manager_for(customer_id, self.directory.profile(customer_id))
        if manager is not None:
            await self.repo.assign_tasks(customer_id, manager)
            self.directory.unassigned.discard(customer_id)

    async def load_unassigned(self) -> None:
        self.directory.unassigned |= await self.repo.unassigned_customers()


def warning_doc(
    customer_id: str, signal: Signal, detected_at: dt.datetime, tier: str, rules: WarningRules
) -> dict[str, Any]:
    """The `warnings` document of a signal, `_id` "<customer> <code> <period>"."""
    return {
        "_id": f"{customer_id} {signal.code.value} {signal.period}",
        "warning_id": warning_id(customer_id, signal),
        "customer_id": customer_id,
        "code": signal.code.value,
        "level": rules.levels[signal.code],
        "period": signal.period,
        "summary": signal.summary,
        "figures": dict(signal.figures),
        "event_ids": list(signal.event_ids),
        "rule_version": rules.version,
        "detected_at": detected_at,
        "tier": tier,
    }


def task_doc(warning: dict[str, Any], manager: str | None, rules: WarningRules) -> dict[str, Any]:
    """The retention task a warning opens, `_id` the warning id, due by its level."""
    opened: dt.datetime = warning["detected_at"]
    return {
        "_id": warning["warning_id"],
        "warning_id": warning["warning_id"],
        "customer_id": warning["customer_id"],
        "code": warning["code"],
        "level": warning["level"],
        "status": "OPEN",
        "manager_id": manager,
        "opened_at": opened,
        "due_at": opened + dt.timedelta(hours=rules.task_due_hours[warning["level"]]),
    }


def warning_message(
    wid: str, customer_id: str, signal: Signal, level: int, at: dt.datetime, version: str
) -> warnings_pb2.WarningEvent:
    """The WarningRaised of a warning, its event id the warning id."""
    m = warnings_pb2.WarningEvent(event_id=wid, customer_id=customer_id)
    m.occurred_at.FromDatetime(at)
    w = m.warning_raised
    w.warning_id = wid
    w.code = warnings_pb2.WarningRaised.Code.Value(signal.code.value)
    w.level = level
    w.period = signal.period
    w.rule_version = version
    w.detected_at.FromDatetime(at)
    w.evidence.summary = signal.summary
    w.evidence.event_ids.extend(signal.event_ids)
    for k, v in signal.figures.items():
        w.evidence.figures[k] = v
    return m
