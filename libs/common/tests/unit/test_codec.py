"""The codec: every contract message round-trips, and each kind of bad input is refused."""

from __future__ import annotations

import pytest

from hvc.common.codec import (
    MAX_MESSAGE_BYTES,
    InvalidEvent,
    codec_for,
    decode,
    encode,
)
from hvc.devinfra.samples import samples
from hvc.events.v1 import accounts_pb2, customers_pb2, usage_pb2

SAMPLES = samples("unit")


@pytest.mark.parametrize(("topic", "kind", "msg"), SAMPLES, ids=[f"{t}:{k}" for t, k, _ in SAMPLES])
def test_every_contract_message_round_trips_through_its_topic_codec(topic, kind, msg):
    codec = codec_for(topic)
    data = codec.serialize(msg)
    back = codec.deserialize(data)
    assert back == msg
    assert back.WhichOneof("payload") == kind if "payload" in back.DESCRIPTOR.oneofs_by_name else 1


def test_samples_cover_every_payload_kind_of_every_envelope():
    kinds = {(t, k) for t, k, _ in SAMPLES}
    assert ("crm.customers.v1", "port_out_requested") in kinds
    assert ("billing.accounts.v1", "account_resumed") in kinds
    assert ("billing.commands.v1", "restore_service") in kinds
    assert ("hvc.clock.v1", "ClockTicked") in kinds  # internal: the wall clock's ticks
    assert ("hvc.tiering-commands.v1", "member_joined") in kinds  # internal: tiering's
    assert ("hvc.complaints-commands.v1", "transition_requested") in kinds  # complaints
    assert len({t for t, _ in kinds}) == 19


def test_codec_refuses_a_message_of_another_topic():
    with pytest.raises(TypeError, match=r"billing\.usage\.v1 carries"):
        codec_for("billing.usage.v1").serialize(accounts_pb2.AccountEvent())


def _usage(**changes):
    _, _, msg = next(s for s in SAMPLES if s[0] == "billing.usage.v1")
    m = usage_pb2.UsageRecorded()
    m.CopyFrom(msg)
    for k, v in changes.items():
        setattr(m, k, v)
    return m


def test_truncated_bytes_are_undecodable():
    data = encode(_usage())
    with pytest.raises(InvalidEvent, match="undecodable"):
        decode(usage_pb2.UsageRecorded, data[: len(data) // 2 + 1])


def test_missing_header_fields_are_listed():
    with pytest.raises(InvalidEvent) as err:
        decode(usage_pb2.UsageRecorded, encode(usage_pb2.UsageRecorded(msisdn="1")))
    assert set(err.value.errors) >= {
        "event_id is required",
        "occurred_at is required",
        "customer_id is required",
    }


def test_envelope_without_a_payload_is_invalid():
    m = customers_pb2.CustomerEvent(event_id="e", customer_id="c")
    m.occurred_at.seconds = 1_768_435_200
    with pytest.raises(InvalidEvent, match="no payload set"):
        decode(customers_pb2.CustomerEvent, encode(m))


def test_group_upserted_needs_no_customer_id():
    m = customers_pb2.CustomerEvent(event_id="e")
    m.occurred_at.seconds = 1_768_435_200
    m.group_upserted.group_id = "g1"
    assert decode(customers_pb2.CustomerEvent, encode(m)).group_upserted.group_id == "g1"


def test_unknown_enum_value_is_invalid():
    m = _usage()
    m.kind = 99  # a value a newer producer might send; proto3 keeps it as an int
    with pytest.raises(InvalidEvent, match="unknown Kind value 99"):
        decode(usage_pb2.UsageRecorded, encode(m))


def test_unspecified_enum_is_invalid():
    with pytest.raises(InvalidEvent, match="Roaming is unspecified"):
        decode(usage_pb2.UsageRecorded, encode(_usage(roaming=0)))


def test_negative_money_is_invalid():
    with pytest.raises(InvalidEvent, match="charged_fen must not be negative"):
        decode(usage_pb2.UsageRecorded, encode(_usage(charged_fen=-1)))


@pytest.mark.parametrize("seconds", [-2_208_988_800, 7_258_118_400])  # 1900 and 2200
def test_instants_in_1900_or_2200_are_invalid(seconds):
    m = _usage()
    m.occurred_at.seconds = seconds
    with pytest.raises(InvalidEvent, match="instant outside"):
        decode(usage_pb2.UsageRecorded, encode(m))


@pytest.mark.parametrize(("y", "mo", "d"), [(1900, 1, 1), (2200, 1, 1), (2025, 2, 30)])
def test_impossible_dates_are_invalid(y, mo, d):
    m = customers_pb2.CustomerEvent(event_id="e", customer_id="c")
    m.occurred_at.seconds = 1_768_435_200
    m.contract_signed.contract_id = "k"
    m.contract_signed.ends_on.year, m.contract_signed.ends_on.month = y, mo
    m.contract_signed.ends_on.day = d
    with pytest.raises(InvalidEvent, match="ends_on"):
        decode(customers_pb2.CustomerEvent, encode(m))


def test_oversized_payload_is_refused_before_parsing():
    with pytest.raises(InvalidEvent, match="exceeds"):
        decode(usage_pb2.UsageRecorded, b"\x00" * (MAX_MESSAGE_BYTES + 1))


def test_tombstone_is_invalid():
    with pytest.raises(InvalidEvent, match="tombstone"):
        decode(usage_pb2.UsageRecorded, None)


def test_customer_ids_are_limited_to_a_safe_alphabet():
    m = _usage()
    m.customer_id = "c 1|x"
    with pytest.raises(InvalidEvent, match="customer_id must be"):
        decode(usage_pb2.UsageRecorded, encode(m))
    m.customer_id = "C-001:a.b_2"
    assert decode(usage_pb2.UsageRecorded, encode(m)).customer_id == "C-001:a.b_2"
