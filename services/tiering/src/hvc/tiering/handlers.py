"""Handlers of the tiering service: one function per input, dependencies as arguments."""

from __future__ import annotations

import logging

from hvc.common.service import EventMeta
from hvc.events.v1 import accounts_pb2, customers_pb2

log = logging.getLogger(__name__)


async def on_customer_event(event: customers_pb2.CustomerEvent, meta: EventMeta) -> None:
    # The tiering rules arrive with the tiering issue; until then events are only seen.
    log.debug(
        "crm.customers.v1", extra={"event_id": event.event_id, "kind": event.WhichOneof("payload")}
    )


async def on_account_event(event: accounts_pb2.AccountEvent, meta: EventMeta) -> None:
    # The tiering rules arrive with the tiering issue; until then events are only seen.
    log.debug(
        "billing.accounts.v1",
        extra={"event_id": event.event_id, "kind": event.WhichOneof("payload")},
    )
