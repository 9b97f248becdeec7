"""Handlers of the complaints service: one function per input, dependencies as arguments."""

from __future__ import annotations

from hvc.common import tracing
from hvc.common.clock import EventClock
from hvc.common.codec import instant
from hvc.common.service import EventMeta
from hvc.complaints.desk import Desk
from hvc.complaints.frontier import TieringFrontier
from hvc.events.v1 import care_pb2, common_pb2, tiering_pb2


async def on_complaint_event(
    event: care_pb2.ComplaintEvent,
    meta: EventMeta,
    *,
    desk: Desk,
    clock: EventClock,
    frontier: TieringFrontier,
) -> None:
    if event.WhichOneof("payload") != "complaint_filed":
        clock.saw(instant(event.occurred_at))
        return
    # The decisions known when it was published are all here first (hvc.complaints.frontier);
    # the clock moves after that, so no timer runs ahead of them.
    await frontier.wait_through(meta.timestamp_ms)
    clock.saw(instant(event.occurred_at))
    f = event.complaint_filed
    await desk.file(
        complaint_id=f.complaint_id or event.event_id,
        customer_id=event.customer_id,
        channel=care_pb2.ComplaintFiled.Channel.Name(f.channel),
        category=f.category or "general",
        text=f.text,
        filed_at=instant(f.filed_at) if f.HasField("filed_at") else instant(event.occurred_at),
        known_ms=meta.timestamp_ms or None,
    )


async def on_tier_decided(
    event: tiering_pb2.TierDecided, meta: EventMeta, *, desk: Desk, clock: EventClock
) -> None:
    # Not the clock: a decision's occurred_at is when tiering decided, not the feed's time.
    # Known when its cause was published (tiering names it); a decision naming none (a run of
    # its own) when it was itself published.
    cause = tracing.parse(meta.headers)
    await desk.tier_changed(
        event.customer_id,
        common_pb2.Tier.Name(event.new_tier),
        instant(event.effective_from),
        cause[1] if cause is not None else meta.timestamp_ms,
    )
