"""Faust agents of the warnings service: decode, then hand to a handler; nothing else."""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from hvc.common.service import Handler, ServiceRuntime
from hvc.warnings import handlers
from hvc.warnings.raiser import Raiser

INPUTS: dict[str, Callable[..., Awaitable[None]]] = {
    "network.calls.v1": handlers.on_call,
    "billing.usage.v1": handlers.on_usage,
    "billing.accounts.v1": handlers.on_account_event,
    "crm.customers.v1": handlers.on_customer_event,
}


def register(runtime: ServiceRuntime, raiser: Raiser) -> None:
    # One table per topic, each co-partitioned with the stream that writes it.
    forward_days = runtime.table("forward-days", default=list, source_topic="network.calls.v1")
    billed = runtime.table("billed", default=dict, source_topic="billing.accounts.v1")
    deps: dict[str, dict[str, Any]] = {
        "network.calls.v1": {"forward_days": forward_days},
        "billing.accounts.v1": {"billed": billed},
    }
    for topic, handler in INPUTS.items():
        bound: Handler = partial(handler, raiser=raiser, **deps.get(topic, {}))
        runtime.subscribe(topic, bound)
