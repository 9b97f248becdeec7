"""Protobuf (de)serialisation and contract validation for Kafka messages."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from hvc.common.topics import spec

M = TypeVar("M", bound=Message)

# A year outside this range in an instant is an upstream bug, not an event.
MIN_YEAR = 2000
MAX_YEAR = 2100
MAX_MESSAGE_BYTES = 1_000_000
# Ids become parts of store keys ("<customer_id> <year> ..."): a bounded, safe alphabet.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")


class InvalidEvent(ValueError):
    """A message that cannot be decoded or breaks the contract; it belongs in the DLQ."""

    def __init__(self, reason: str, errors: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or [reason]


def instant(ts: Timestamp) -> dt.datetime:
    """A contract Timestamp as an aware UTC datetime."""
    return ts.ToDatetime(tzinfo=dt.UTC)


def encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def decode(message_type: type[M], data: bytes | None) -> M:
    """Decode and validate one message; raise InvalidEvent with the reasons."""
    if data is None:
        raise InvalidEvent("empty value (tombstone) on an event topic")
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidEvent(f"value of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    msg = message_type()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidEvent(f"undecodable {message_type.DESCRIPTOR.full_name}: {exc}") from exc
    errors = validate(msg)
    if errors:
        raise InvalidEvent("; ".join(errors), errors)
    return msg


def validate(msg: Message) -> list[str]:
    """Contract-level checks: header fields, payload present, known enums, sane numbers."""
    errors: list[str] = []
    fields = msg.DESCRIPTOR.fields_by_name
    header: Any = msg  # every contract message carries the header fields below
    if "event_id" in fields:
        if not header.event_id:
            errors.append("event_id is required")
        if not msg.HasField("occurred_at"):
            errors.append("occurred_at is required")
        oneof = msg.DESCRIPTOR.oneofs_by_name.get("payload")
        kind = msg.WhichOneof("payload") if oneof is not None else None
        if oneof is not None and kind is None:
            errors.append(f"{msg.DESCRIPTOR.name}: no payload set (unknown or missing kind)")
        # GroupUpserted is the one kind keyed by group, not by customer; an outage concerns
        # many customers and names none (its envelope has no customer_id).
        if "customer_id" not in fields:
            if "outage_id" in fields and not ID_PATTERN.fullmatch(header.outage_id):
                errors.append("outage_id is required: 1-64 of A-Z a-z 0-9 _ - : .")
        elif not header.customer_id and kind != "group_upserted":
            errors.append("customer_id is required")
        elif header.customer_id and not ID_PATTERN.fullmatch(header.customer_id):
            errors.append("customer_id must be 1-64 of A-Z a-z 0-9 _ - : .")
    _check(msg, msg.DESCRIPTOR.name, errors)
    return errors


@dataclass(frozen=True)
class _Plan:
    """What _check looks at in one message type, worked out once per type (the hot path
    validates every consumed event)."""

    enums: tuple[tuple[str, bool, bool, EnumDescriptor], ...]  # name, repeated, presence, type
    messages: tuple[tuple[str, bool, str], ...]  # name, repeated, kind: timestamp|date|message
    non_negative: tuple[str, ...]


_PLANS: dict[str, _Plan] = {}


def _plan(descriptor: Any) -> _Plan:
    plan = _PLANS.get(descriptor.full_name)
    if plan is not None:
        return plan
    enums, messages, non_negative = [], [], []
    for fd in descriptor.fields:
        repeated = _is_repeated(fd)
        if fd.type == FieldDescriptor.TYPE_ENUM:
            enums.append((fd.name, repeated, bool(fd.has_presence), fd.enum_type))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                continue
            kind = {
                "google.protobuf.Timestamp": "timestamp",
                "hvc.events.v1.Date": "date",
            }.get(fd.message_type.full_name, "message")
            messages.append((fd.name, repeated, kind))
        elif fd.name.endswith(("_fen", "_bytes", "_s", "_hours")) and not repeated:
            non_negative.append(fd.name)
    plan = _Plan(tuple(enums), tuple(messages), tuple(non_negative))
    _PLANS[descriptor.full_name] = plan
    return plan


def _check(msg: Message, path: str, errors: list[str]) -> None:
    plan = _plan(msg.DESCRIPTOR)
    for name, repeated, presence, enum in plan.enums:
        if repeated:
            for v in getattr(msg, name):
                _check_enum(enum, v, f"{path}.{name}", errors)
            continue
        # proto3 does not serialise a zero enum: a singular one reads 0 when unset.
        if presence and not msg.HasField(name):
            continue
        value = getattr(msg, name)
        if value == 0:
            errors.append(f"{path}.{name}: {enum.name} is unspecified")
        elif value not in enum.values_by_number:
            errors.append(f"{path}.{name}: unknown {enum.name} value {value}")
    for name, repeated, kind in plan.messages:
        if repeated:
            items = list(getattr(msg, name))
        elif msg.HasField(name):
            items = [getattr(msg, name)]
        else:
            continue
        where = f"{path}.{name}"
        for item in items:
            if kind == "timestamp":
                _check_timestamp(item, where, errors)
            elif kind == "date":
                _check_date(item, where, errors)
            else:
                _check(item, where, errors)
    for name in plan.non_negative:
        value = getattr(msg, name)
        if value < 0:
            errors.append(f"{path}.{name} must not be negative (got {value})")


def _is_repeated(fd: Any) -> bool:
    return bool(fd.is_repeated)


def _check_enum(enum: EnumDescriptor, value: int, where: str, errors: list[str]) -> None:
    if value not in enum.values_by_number:
        errors.append(f"{where}: unknown {enum.name} value {value}")
    elif value == 0:  # only reachable for repeated enums: single ones are checked above
        errors.append(f"{where}: {enum.name} is unspecified")


def _check_timestamp(ts: Any, where: str, errors: list[str]) -> None:
    # Year bounds from seconds: 2000-01-01 and 2101-01-01 UTC.
    if not 946_684_800 <= ts.seconds < 4_133_980_800:
        errors.append(f"{where}: instant outside {MIN_YEAR}-{MAX_YEAR} (seconds={ts.seconds})")


def _check_date(d: Any, where: str, errors: list[str]) -> None:
    import datetime as dt

    # Birthdays may be long ago; still, a date must exist on the calendar.
    try:
        dt.date(d.year, d.month, d.day)
    except ValueError:
        errors.append(f"{where}: not a calendar date ({d.year}-{d.month}-{d.day})")
        return
    if not 1900 < d.year < 2200:
        errors.append(f"{where}: year {d.year} out of range")


@dataclass(frozen=True)
class TopicCodec(Generic[M]):
    """The serializer/deserializer pair of one topic, usable directly by aiokafka."""

    topic: str
    message_type: type[M]

    def serialize(self, message: M) -> bytes:
        if not isinstance(message, self.message_type):
            raise TypeError(
                f"{self.topic} carries {self.message_type.DESCRIPTOR.full_name}, "
                f"not {type(message).__name__}"
            )
        return encode(message)

    def deserialize(self, data: bytes | None) -> M:
        return decode(self.message_type, data)


def codec_for(topic: str) -> TopicCodec[Any]:
    s = spec(topic)
    if s.message is None:
        raise KeyError(f"{topic} carries raw dead letters, not a contract message")
    return TopicCodec(topic, s.message)


def key_serializer(key: str | None) -> bytes | None:
    return None if key is None else key.encode("utf-8")
