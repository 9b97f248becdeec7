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


@dataclass
class Pace:
    """A fixed offered load: `rate` events per second, for at most `seconds` (0: no limit)."""

    rate: float
    seconds: float = 0.0
    started: float = 0.0

    async def wait(self, sent: int) -> None:
        ahead = self.started + sent / self.rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)

    def over(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.started >= self.seconds


class Stop(Exception):
    pass


async def publish(
    producer: AIOKafkaProducer,
    events: Iterable[Event],
    progress: Progress,
    pace: Pace | None = None,
) -> None:
    pending = []
    chunk = 5000 if pace is None else max(1, int(pace.rate / 50))  # 20 ms of load
    for topic, key, message in events:
        pending.append(await producer.send(topic, message.SerializeToString(), key=key.encode()))
        if len(pending) >= chunk:
            await asyncio.gather(*pending)
            progress.events += len(pending)
            pending.clear()
            if pace is not None:
                if pace.over():
                    raise Stop
                await pace.wait(progress.events)
    await asyncio.gather(*pending)
    progress.events += len(pending)


async def run(
    world: World,
    bootstrap: str,
    *,
    days_per_second: float,
    events_per_second: float = 0.0,
    seconds: float = 0.0,
    progress_every_s: float = 2.0,
) -> Progress:
    """Play `world.o.days` simulated days; each takes at least 1/days_per_second seconds.
    With `events_per_second`, the pace is that offered load instead (the days go as fast as
    it allows), for at most `seconds` when given."""
    # Like an upstream that waits out a broker restart: a batch is given two minutes.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=10,
        max_batch_size=512 * 1024,
        request_timeout_ms=120_000,
    )
    await producer.start()
    progress = Progress(started=time.monotonic())
    pace = Pace(events_per_second, seconds, progress.started) if events_per_second > 0 else None
    last_report = 0.0
    n = 0
    try:
        progress.day = world.o.start
        await publish(producer, world.onboarding(), progress, pace)
        for n in range(world.o.days):
            t0 = time.monotonic()
            progress.day = world.o.start + dt.timedelta(days=n)
            await publish(producer, world.day(n), progress, pace)
            if time.monotonic() - last_report >= progress_every_s:
                log.info(progress.line(world.o.days, n))
                last_report = time.monotonic()
            if days_per_second > 0 and pace is None:
                await asyncio.sleep(max(0.0, 1 / days_per_second - (time.monotonic() - t0)))
    except Stop:
        pass
    finally:
        await producer.stop()
    log.info(progress.line(world.o.days, n) + " | done")
    return progress
