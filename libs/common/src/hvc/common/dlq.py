"""Dead letters: an undecodable or invalid message goes to `<topic>.dlq` with the reason."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence

from prometheus_client import Counter

from hvc.common.kafka import Send
from hvc.common.topics import DLQ_SUFFIX

log = logging.getLogger(__name__)

HEADER_REASON = "dlq.reason"
HEADER_ERROR = "dlq.error"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"
HEADER_CONSUMER = "dlq.consumer"
HEADER_FAILED_AT = "dlq.failed_at"
HEADER_TRUNCATED = "dlq.original.bytes"
HEADER_SHA256 = "dlq.original.sha256"
MAX_REASON_BYTES = 4096
# A dead letter must fit the producer's request limit (1 MiB by default) with its headers. A
# larger value keeps its first bytes here; the whole of it stays in the source topic at the
# coordinates the headers name, with its size and digest to tell it is the one.
MAX_DEAD_VALUE_BYTES = 512 * 1024

DEAD_LETTERS = Counter(
    "hvc_dead_letters_total", "Messages sent to a dead-letter topic", ["topic", "error"]
)


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def dead_letter_headers(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    consumer: str,
    original: Sequence[tuple[str, bytes]] = (),
    now: dt.datetime | None = None,
) -> list[tuple[str, bytes]]:
    failed_at = (now or dt.datetime.now(dt.UTC)).isoformat()
    ours = [
        (HEADER_REASON, reason.encode("utf-8")[:MAX_REASON_BYTES]),
        (HEADER_ERROR, error.encode("utf-8")),
        (HEADER_TOPIC, topic.encode("utf-8")),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_CONSUMER, consumer.encode("utf-8")),
        (HEADER_FAILED_AT, failed_at.encode()),
    ]
    # Keep the producer's own headers, so a replay from the DLQ is faithful.
    return ours + [(k, v) for k, v in original if not k.startswith("dlq.")]


def dead_letter(
    value: bytes | None,
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    consumer: str,
    original: Sequence[tuple[str, bytes]] = (),
) -> tuple[list[tuple[str, bytes]], bytes | None]:
    """The headers and value of a dead letter for a message as received (a value too large
    for the producer keeps its first bytes, with its size and digest)."""
    headers = dead_letter_headers(
        reason=reason,
        error=error,
        topic=topic,
        partition=partition,
        offset=offset,
        consumer=consumer,
        original=original,
    )
    if value is not None and len(value) > MAX_DEAD_VALUE_BYTES:
        headers += [
            (HEADER_TRUNCATED, str(len(value)).encode()),
            (HEADER_SHA256, hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:MAX_DEAD_VALUE_BYTES]
    return headers, value


async def send_to_dlq(
    send: Send,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
    consumer: str,
    original_headers: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Publish the message as received, and wait until the broker has it."""
    headers, value = dead_letter(
        value,
        reason=reason,
        error=error,
        topic=topic,
        partition=partition,
        offset=offset,
        consumer=consumer,
        original=original_headers,
    )
    await send(dlq_topic(topic), key, value, headers)
    DEAD_LETTERS.labels(topic=topic, error=error).inc()
    log.warning(
        "dead-lettered message",
        extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason},
    )
