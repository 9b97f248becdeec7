"""Handlers of the complaints service: one function per input, dependencies as arguments."""

from __future__ import annotations

import logging

from hvc.common.service import EventMeta
from hvc.events.v1 import care_pb2, tiering_pb2

log = logging.getLogger(__name__)


async def on_complaint_event(event: care_pb2.ComplaintEvent, meta: EventMeta) -> None:
    # The complaints rules arrive with the complaints issue; until then events are only seen.
    log.debug(
        "care.complaints.v1",
        extra={"event_id": event.event_id, "kind": event.WhichOneof("payload")},
    )


async def on_tier_decided(event: tiering_pb2.TierDecided, meta: EventMeta) -> None:
    # The complaints rules arrive with the complaints issue; until then events are only seen.
    log.debug("hvc.tier-decisions.v1", extra={"event_id": event.event_id, "kind": "TierDecided"})
