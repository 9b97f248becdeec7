"""Publishes the world's events to Kafka on a simulated clock, faster than real time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from hvc.simulator.world import Event, World

log = logging.getLogger("hvc.simulator")


@dataclass
class Progress:
    events: int = 0
    day: dt.date | None = None
    started: float = 0.0

    def line(self, total_days: int, n: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return (
            f"simulated {self.day} (day {n + 1}/{total_days}) | {self.events:,} events | "
            f"{self.events / elapsed:,.0f} events/s"
        )


async def publish(producer: AIOKafkaProducer, events: Iterable[Event], progress: Progress) -> None:
    pending = []
    for topic, key, message in events:
        pending.append(await producer.send(topic, message.SerializeToString(), key=key.encode()))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            progress.events += len(pending)
            pending.clear()
    await asyncio.gather(*pending)
    progress.events += len(pending)


async def run(
    world: World,
    bootstrap: str,
    *,
    days_per_second: float,
    progress_every_s: float = 2.0,
) -> Progress:
    """Play `world.o.days` simulated days; each takes at least 1/days_per_second seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=512 * 1024
    )
    await producer.start()
    progress = Progress(started=time.monotonic())
    last_report = 0.0
    try:
        progress.day = world.o.start
        await publish(producer, world.onboarding(), progress)
        for n in range(world.o.days):
            t0 = time.monotonic()
            progress.day = world.o.start + dt.timedelta(days=n)
            await publish(producer, world.day(n), progress)
            if time.monotonic() - last_report >= progress_every_s:
                log.info(progress.line(world.o.days, n))
                last_report = time.monotonic()
            if days_per_second > 0:
                await asyncio.sleep(max(0.0, 1 / days_per_second - (time.monotonic() - t0)))
        log.info(progress.line(world.o.days, world.o.days - 1) + " | done")
    finally:
        await producer.stop()
    return progress
