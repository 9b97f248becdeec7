"""Fully populated, valid samples of every contract message, one per topic and payload kind."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from hvc.common.topics import CONTRACT_TOPICS

SAMPLE_SECONDS = 1_768_435_200  # 2026-01-15T00:00:00Z


def fill(msg: Message, tag: str) -> Message:
    """Set every field (every oneof member is chosen by the caller) to a valid value."""
    _fill(msg, msg.DESCRIPTOR, tag, skip_oneof=True)
    return msg


def _value(fd: FieldDescriptor, tag: str) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if fd.name == "period":
            return "2025-12"
        if fd.name in ("msisdn", "other_number", "forwarded_to"):
            return "13800138000"
        return f"{tag}-{fd.name}"
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t == FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        return fd.enum_type.values[1].number  # the first specified value
    if t == FieldDescriptor.TYPE_BYTES:
        return tag.encode()
    return 7  # every integer: positive, small, valid as money, seconds, hours or count


def _fill(msg: Any, desc: Any, tag: str, *, skip_oneof: bool) -> None:
    for fd in desc.fields:
        if skip_oneof and fd.containing_oneof is not None and fd.containing_oneof.name == "payload":
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            sub = fd.message_type
            assert sub is not None
            if sub.GetOptions().map_entry:
                value_fd = sub.fields_by_name["value"]
                getattr(msg, fd.name)["k"] = _value(value_fd, tag)
                continue
            target = getattr(msg, fd.name).add() if fd.is_repeated else getattr(msg, fd.name)
            if sub.full_name == "google.protobuf.Timestamp":
                target.seconds = SAMPLE_SECONDS
            elif sub.full_name == "hvc.events.v1.Date":
                target.year, target.month, target.day = 1990, 5, 17
            else:
                _fill(target, sub, tag, skip_oneof=False)
        elif fd.is_repeated:
            getattr(msg, fd.name).append(_value(fd, tag))
        else:
            setattr(msg, fd.name, _value(fd, tag))


def samples(tag: str = "sample") -> list[tuple[str, str, Message]]:
    """(topic, kind, message) for every contract topic and every payload kind it carries."""
    out: list[tuple[str, str, Message]] = []
    for spec in CONTRACT_TOPICS:
        assert spec.message is not None
        oneof = spec.message.DESCRIPTOR.oneofs_by_name.get("payload")
        kinds = [f.name for f in oneof.fields] if oneof is not None else [None]
        for kind in kinds:
            msg = fill(spec.message(), tag)
            if kind is not None:
                _fill(
                    getattr(msg, kind),
                    spec.message.DESCRIPTOR.fields_by_name[kind].message_type,
                    tag,
                    skip_oneof=False,
                )
                getattr(msg, kind).SetInParent()
            header: Any = msg
            fields = msg.DESCRIPTOR.fields_by_name
            if "event_id" in fields:  # not the wall clock's ticks (hvc.clock.v1)
                header.event_id = f"{tag}-{spec.name}-{kind or 'event'}"
            if "customer_id" in fields:
                header.customer_id = f"{tag}-customer"
            out.append((spec.name, kind or spec.message.DESCRIPTOR.name, msg))
    return out
