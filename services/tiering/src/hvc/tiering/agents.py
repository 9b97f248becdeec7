"""Faust agents of the tiering service: decode, then hand to a handler; nothing else."""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from hvc.common.service import Handler, ServiceRuntime
from hvc.tiering import handlers
from hvc.tiering.decisions import Decider

INPUTS: dict[str, Callable[..., Awaitable[None]]] = {
    "crm.customers.v1": handlers.on_customer_event,
    "billing.accounts.v1": handlers.on_account_event,
}


def register(runtime: ServiceRuntime, decider: Decider, lanes: int = 1) -> None:
    deps: dict[str, Any] = {"decider": decider}
    for topic, handler in INPUTS.items():
        bound: Handler = partial(handler, **deps)
        runtime.subscribe(topic, bound, lanes=lanes)
