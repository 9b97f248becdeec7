"""Faust agents of the warnings service: decode, then hand to a handler; nothing else."""

from hvc.common.service import Handler, ServiceRuntime
from hvc.warnings import handlers

INPUTS: dict[str, Handler] = {
    "network.calls.v1": handlers.on_call,
    "billing.usage.v1": handlers.on_usage,
    "billing.accounts.v1": handlers.on_account_event,
    "crm.customers.v1": handlers.on_customer_event,
}


def register(runtime: ServiceRuntime) -> None:
    for topic, handler in INPUTS.items():
        runtime.subscribe(topic, handler)
