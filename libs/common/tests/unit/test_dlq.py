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
