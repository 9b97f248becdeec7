"""Dead-letter headers carry the reason and the source coordinates, and keep the originals."""

from __future__ import annotations

import datetime as dt

from hvc.common.dlq import dead_letter_headers, send_to_dlq


def test_headers_name_reason_source_and_keep_original_headers():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    h = dict(
        dead_letter_headers(
            reason="bad",
            error="invalid",
            topic="billing.usage.v1",
            partition=3,
            offset=42,
            consumer="warnings",
            original=[("trace", b"t1"), ("dlq.reason", b"old")],
            now=now,
        )
    )
    assert h["dlq.reason"] == b"bad"
    assert h["dlq.source.topic"] == b"billing.usage.v1"
    assert h["dlq.source.partition"] == b"3"
    assert h["dlq.source.offset"] == b"42"
    assert h["dlq.consumer"] == b"warnings"
    assert h["dlq.failed_at"] == now.isoformat().encode()
    assert h["trace"] == b"t1"


async def test_send_to_dlq_publishes_the_raw_message_to_the_twin_topic():
    sent = []

    async def send(topic, key, value, headers):
        sent.append((topic, key, value, dict(headers)))

    await send_to_dlq(
        send,
        topic="crm.customers.v1",
        partition=0,
        offset=1,
        key=b"c1",
        value=b"\xff",
        reason="x" * 10_000,
        error="invalid",
        consumer="tiering",
    )
    (topic, key, value, headers) = sent[0]
    assert (topic, key, value) == ("crm.customers.v1.dlq", b"c1", b"\xff")
    assert len(headers["dlq.reason"]) == 4096


async def test_a_value_too_large_for_a_dead_letter_keeps_its_head_size_and_digest():
    import hashlib

    from hvc.common.dlq import MAX_DEAD_VALUE_BYTES

    sent = []

    async def send(topic, key, value, headers):
        sent.append((value, dict(headers)))

    big = bytes(range(256)) * (10 * 4096)  # 10 MiB
    await send_to_dlq(
        send,
        topic="billing.usage.v1",
        partition=0,
        offset=9,
        key=b"k",
        value=big,
        reason="too big",
        error="invalid",
        consumer="warnings",
    )
    [(value, headers)] = sent
    assert value == big[:MAX_DEAD_VALUE_BYTES]
    assert headers["dlq.original.bytes"] == str(len(big)).encode()
    assert headers["dlq.original.sha256"] == hashlib.sha256(big).hexdigest().encode()
    assert headers["dlq.source.offset"] == b"9"
