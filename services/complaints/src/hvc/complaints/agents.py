"""Faust agents of the complaints service: decode, then hand to a handler; nothing else.

Complaints are few (a handful per thousand customers a month): faust agents and a store
round trip per event are well within budget here."""

from collections.abc import Awaitable, Callable
from functools import partial

from hvc.common.clock import EventClock
from hvc.common.service import ServiceRuntime
from hvc.complaints import handlers
from hvc.complaints.desk import Desk
from hvc.complaints.frontier import TieringFrontier

INPUTS: dict[str, Callable[..., Awaitable[None]]] = {
    "care.complaints.v1": handlers.on_complaint_event,
    "hvc.tier-decisions.v1": handlers.on_tier_decided,
}


def register(
    runtime: ServiceRuntime, desk: Desk, clock: EventClock, frontier: TieringFrontier
) -> None:
    extra = {"care.complaints.v1": {"frontier": frontier}}
    for topic, handler in INPUTS.items():
        runtime.subscribe(topic, partial(handler, desk=desk, clock=clock, **extra.get(topic, {})))
