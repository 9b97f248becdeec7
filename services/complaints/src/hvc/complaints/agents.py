"""Faust agents of the complaints service: decode, then hand to a handler; nothing else."""

from hvc.common.service import Handler, ServiceRuntime
from hvc.complaints import handlers

INPUTS: dict[str, Handler] = {
    "care.complaints.v1": handlers.on_complaint_event,
    "hvc.tier-decisions.v1": handlers.on_tier_decided,
}


def register(runtime: ServiceRuntime) -> None:
    for topic, handler in INPUTS.items():
        runtime.subscribe(topic, handler)
