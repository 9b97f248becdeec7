"""Faust agents of the benefits service: decode, then hand to a handler; nothing else."""

from hvc.benefits import handlers
from hvc.common.service import Handler, ServiceRuntime

INPUTS: dict[str, Handler] = {
    "hvc.tier-decisions.v1": handlers.on_tier_decided,
    "crm.customers.v1": handlers.on_customer_event,
    "billing.accounts.v1": handlers.on_account_event,
    "billing.usage.v1": handlers.on_usage,
}


def register(runtime: ServiceRuntime) -> None:
    for topic, handler in INPUTS.items():
        runtime.subscribe(topic, handler)
