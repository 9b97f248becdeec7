"""Faust agents of the tiering service: decode, then hand to a handler; nothing else."""

from hvc.common.service import Handler, ServiceRuntime
from hvc.tiering import handlers

INPUTS: dict[str, Handler] = {
    "crm.customers.v1": handlers.on_customer_event,
    "billing.accounts.v1": handlers.on_account_event,
}


def register(runtime: ServiceRuntime) -> None:
    for topic, handler in INPUTS.items():
        runtime.subscribe(topic, handler)
