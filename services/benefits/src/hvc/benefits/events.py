"""Building the messages the benefits service publishes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from hvc.common.codec import codec_for
from hvc.events.v1 import (
    benefits_pb2,
    billing_commands_pb2,
    common_pb2,
    notifications_pb2,
    usage_pb2,
)

BENEFITS, COMMANDS, NOTIFICATIONS = "hvc.benefits.v1", "billing.commands.v1", "hvc.notifications.v1"


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def benefit(
    kind: str,
    event_id: str,
    customer_id: str,
    at: dt.datetime,
    *,
    grant_id: str,
    code: str,
    tier: str,
    quantity: int,
    valid_from: dt.datetime | None = None,
    valid_to: dt.datetime | None = None,
) -> bytes:
    m = benefits_pb2.BenefitEvent(event_id=event_id, customer_id=customer_id)
    m.occurred_at.FromDatetime(_utc(at))
    body = getattr(m, kind)  # benefit_granted | benefit_claimed | benefit_revoked | ...
    body.grant_id, body.code, body.quantity = grant_id, code, quantity
    body.tier = common_pb2.Tier.Value(tier)
    if valid_from is not None:
        body.valid_from.FromDatetime(_utc(valid_from))
    if valid_to is not None:
        body.valid_to.FromDatetime(_utc(valid_to))
    return codec_for(BENEFITS).serialize(m)


def restore(event_id: str, customer_id: str, at: dt.datetime, hours: int) -> bytes:
    m = billing_commands_pb2.BillingCommand(event_id=event_id, customer_id=customer_id)
    m.occurred_at.FromDatetime(_utc(at))
    m.restore_service.command_id, m.restore_service.hours = event_id, hours
    return codec_for(COMMANDS).serialize(m)


def waive(event_id: str, customer_id: str, at: dt.datetime, day: dt.date) -> bytes:
    m = billing_commands_pb2.BillingCommand(event_id=event_id, customer_id=customer_id)
    m.occurred_at.FromDatetime(_utc(at))
    w = m.waive_charges
    w.command_id = event_id
    w.date.CopyFrom(common_pb2.Date(year=day.year, month=day.month, day=day.day))
    w.kinds.extend(
        [usage_pb2.UsageRecorded.VOICE, usage_pb2.UsageRecorded.DATA, usage_pb2.UsageRecorded.SMS]
    )
    return codec_for(COMMANDS).serialize(m)


def notice(
    event_id: str, customer_id: str, at: dt.datetime, template: str, params: Mapping[str, str]
) -> bytes:
    m = notifications_pb2.NotificationRequested(
        event_id=event_id,
        customer_id=customer_id,
        notification_id=event_id,
        channel=notifications_pb2.NotificationRequested.SMS,
        template=template,
    )
    m.occurred_at.FromDatetime(_utc(at))
    for k, v in params.items():
        m.params[k] = v
    return codec_for(NOTIFICATIONS).serialize(m)
