"""The documents and the message of a warning: what the pipeline (hvc.warnings.pipeline)
writes to the `warnings` and `tasks` views and publishes on hvc.warnings.v1, with ids derived
from the warning's cause, so that every replay writes and publishes the same."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from hvc.events.v1 import warnings_pb2
from hvc.warnings.domain.rules import WarningRules
from hvc.warnings.domain.signals import Signal

TOPIC = "hvc.warnings.v1"


def warning_id(customer_id: str, signal: Signal) -> str:
    raw = f"{customer_id}|{signal.code.value}|{signal.period}"
    return "w-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


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
        "category": rules.categories[signal.code].value,
        "period": signal.period,
        "summary": signal.summary,
        "figures": dict(signal.figures),
        "notes": dict(signal.notes),
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
        "category": warning["category"],
        "status": "OPEN",
        "manager_id": manager,
        "opened_at": opened,
        "due_at": opened + dt.timedelta(hours=rules.task_due_hours[warning["level"]]),
        # The evidence and the tier at the warning, for the manager's worklist.
        "period": warning["period"],
        "summary": warning["summary"],
        "figures": dict(warning["figures"]),
        "notes": dict(warning.get("notes") or {}),
        "tier": warning["tier"],
    }


def warning_message(
    wid: str, customer_id: str, signal: Signal, at: dt.datetime, rules: WarningRules
) -> warnings_pb2.WarningEvent:
    """The WarningRaised of a warning, its event id the warning id."""
    m = warnings_pb2.WarningEvent(event_id=wid, customer_id=customer_id)
    m.occurred_at.FromDatetime(at)
    w = m.warning_raised
    w.warning_id = wid
    w.code = warnings_pb2.WarningRaised.Code.Value(signal.code.value)
    w.level = rules.levels[signal.code]
    w.category = warnings_pb2.WarningRaised.Category.Value(rules.categories[signal.code].value)
    w.period = signal.period
    w.rule_version = rules.version
    w.detected_at.FromDatetime(at)
    w.evidence.summary = signal.summary
    w.evidence.event_ids.extend(signal.event_ids)
    for k, v in signal.figures.items():
        w.evidence.figures[k] = v
    return m
