"""A plain aiokafka producer for processes that publish without a service runtime (CLI runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from hvc.common.settings import KafkaSettings

# send(topic, key, value, headers): publish and wait for the broker's acknowledgement.
Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[object]]


@asynccontextmanager
async def producer(settings: KafkaSettings) -> AsyncIterator[Send]:
    p = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **settings.client_kwargs(),
    )
    await p.start()

    async def send(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> object:
        return await p.send_and_wait(topic, value=value, key=key, headers=headers or None)

    try:
        yield send
    finally:
        await p.stop()
