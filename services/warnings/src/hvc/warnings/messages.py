"""A message to a customer, as the warnings pipeline sends one (an outage's notice, a care
touch): the NotificationRequested for the operator's SMS/app gateway, its Chinese text in its
params, and the entry in the customer's contact history, both under one id derived from the
cause (the same on every replay; the history entry inserted once)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from hvc.common.streams import Context
from hvc.events.v1 import notifications_pb2

NOTIFICATIONS = "hvc.notifications.v1"


def send(
    ctx: Context,
    message_id: str,
    customer_id: str,
    *,
    template: str,
    params: Mapping[str, str],
    text: str,
    channel: str,
    at: dt.datetime,
    kind: str,
    by: str,
    **history: str,
) -> None:
    """`kind` (NOTICE, CARE) and `history` (what else the contact history names) are the
    history entry's."""
    m = notifications_pb2.NotificationRequested(
        event_id=message_id,
        customer_id=customer_id,
        notification_id=message_id,
        template=template,
    )
    m.channel = notifications_pb2.NotificationRequested.Channel.Value(channel)
    m.occurred_at.FromDatetime(at)
    m.params.update({**params, "text": text})
    ctx.emit(NOTIFICATIONS, customer_id, m)
    contact = {
        "customer_id": customer_id,
        "task_id": None,
        "kind": kind,
        "channel": channel,
        "direction": "OUTBOUND",
        "content": text,
        "outcome": "SENT",
        "by": by,
        "at": at,
        "template": template,
        **history,
    }
    ctx.view("contacts", message_id, contact, "insert")
