"""The idempotent producer what is not the stream engine publishes through: a service
runtime's sends (hvc.common.service) and a CLI run's (the annual evaluation)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber

from hvc.common.settings import KafkaSettings

log = logging.getLogger(__name__)

# send(topic, key, value, headers): publish and wait for the broker's acknowledgement.
Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[object]]


def idempotent_producer(settings: KafkaSettings, **extra: Any) -> AIOKafkaProducer:
    """An aiokafka producer that waits for every replica and writes a record once per send."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **{**settings.client_kwargs(), **extra},
    )


class Publisher:
    """An idempotent producer that puts a new one in its own place when the broker has lost
    its sequences.

    aiokafka's idempotent producer does not get over that (aio-libs/aiokafka#1017, open):
    once a broker restart has left its sequences behind the broker's, every send fails with
    OutOfOrderSequenceNumber until the process restarts (the fault suite's complaints failed
    each clock tick for 300 s so). A new producer, a new producer id with its sequences from
    0, takes over, once for all the sends in flight, and each failed record goes again
    through it: at least once, as every consumer de-duplicates by event id. A send that fails
    so on the new producer too fails."""

    def __init__(self, make: Callable[[], AIOKafkaProducer], name: str = "producer") -> None:
        self.make = make
        self.name = name
        self.producer: AIOKafkaProducer | None = None  # from start to stop
        self._renewed = asyncio.Lock()

    async def start(self) -> None:
        producer = self.make()
        await producer.start()
        self.producer = producer

    async def stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> object:
        producer = self.producer
        if producer is None:
            raise RuntimeError(f"{self.name} is not started: nothing can be published")
        kw: dict[str, Any] = {"value": value, "key": key, "partition": partition}
        try:
            return await producer.send_and_wait(topic, headers=headers or None, **kw)
        except OutOfOrderSequenceNumber:
            fresh = await self._renew(producer)
            return await fresh.send_and_wait(topic, headers=headers or None, **kw)

    async def _renew(self, broken: AIOKafkaProducer) -> AIOKafkaProducer:
        """A new producer in place of `broken`, once for all the sends it failed."""
        async with self._renewed:
            if id(self.producer) == id(broken):  # (no other send renewed it meanwhile)
                log.warning("%s out of sequence with the broker: a new one takes over", self.name)
                fresh = self.make()
                await fresh.start()
                self.producer = fresh
                try:
                    await broken.stop()
                except Exception:  # its sends have failed already; nothing of it is kept
                    log.warning("the broken producer did not stop cleanly", exc_info=True)
        if self.producer is None:
            raise RuntimeError(f"{self.name} is stopping: nothing can be published")
        return self.producer


@asynccontextmanager
async def producer(settings: KafkaSettings) -> AsyncIterator[Send]:
    """A CLI run's sends (larger batches: a run publishes many records at once)."""
    publisher = Publisher(lambda: idempotent_producer(settings, max_batch_size=256 * 1024))
    await publisher.start()

    async def send(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> object:
        return await publisher.send(topic, key, value, headers)

    try:
        yield send
    finally:
        await publisher.stop()
