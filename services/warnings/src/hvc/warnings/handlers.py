"""Handlers of the warnings service: one function per input, dependencies as arguments."""

from __future__ import annotations

import logging

from hvc.common.service import EventMeta
from hvc.events.v1 import accounts_pb2, calls_pb2, customers_pb2, usage_pb2

log = logging.getLogger(__name__)


async def on_call(event: calls_pb2.CallRecorded, meta: EventMeta) -> None:
    # The warnings rules arrive with the warnings issue; until then events are only seen.
    log.debug("network.calls.v1", extra={"event_id": event.event_id, "kind": "CallRecorded"})


async def on_usage(event: usage_pb2.UsageRecorded, meta: EventMeta) -> None:
    # The warnings rules arrive with the warnings issue; until then events are only seen.
    log.debug("billing.usage.v1", extra={"event_id": event.event_id, "kind": "UsageRecorded"})


async def on_account_event(event: accounts_pb2.AccountEvent, meta: EventMeta) -> None:
    # The warnings rules arrive with the warnings issue; until then events are only seen.
    log.debug(
        "billing.accounts.v1",
        extra={"event_id": event.event_id, "kind": event.WhichOneof("payload")},
    )


async def on_customer_event(event: customers_pb2.CustomerEvent, meta: EventMeta) -> None:
    # The warnings rules arrive with the warnings issue; until then events are only seen.
    log.debug(
        "crm.customers.v1", extra={"event_id": event.event_id, "kind": event.WhichOneof("payload")}
    )
