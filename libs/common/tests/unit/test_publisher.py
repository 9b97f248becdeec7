"""Our producer after the broker lost its sequences: aiokafka's idempotent producer fails every
send with OutOfOrderSequenceNumber from then on (aio-libs/aiokafka#1017), so the publisher
(hvc.common.kafka.Publisher) puts a new one in its place, once, and sends again through it:
the service runtime's sends and a CLI run's alike. (The broker restart of the fault suite is
where it happened; this drives our side of it.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from hvc.common import kafka
from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings


class Producer:
    """A producer whose sends fail out of sequence (`broken`) or are kept (`sent`)."""

    made: list[Producer] = []

    def __init__(self, broken: bool) -> None:
        self.broken, self.sent, self.started, self.stopped = broken, [], False, False
        Producer.made.append(self)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, **kw: Any) -> str:
        await asyncio.sleep(0)  # the sends are in flight together, as a clock tick's are
        if self.broken:
            raise OutOfOrderSequenceNumber()
        self.sent.append((topic, kw["value"]))
        return "ok"


async def test_sends_out_of_sequence_renew_the_producer_once_and_go_through_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = ServiceRuntime("probe", hvc=HvcSettings(data_dir=str(tmp_path)))
    Producer.made = []
    broken = Producer(broken=True)
    runtime._publisher.producer = broken  # type: ignore[assignment]
    monkeypatch.setattr(runtime._publisher, "make", lambda: Producer(broken=False))
    answers = await asyncio.gather(
        *(runtime.send("hvc.clock.v1", None, bytes([p]), []) for p in range(24))
    )
    assert answers == ["ok"] * 24
    [old, new] = Producer.made  # one new producer for the 24 sends that failed
    assert old is broken and old.stopped and new.started and not new.stopped
    assert runtime._publisher.producer is new
    assert sorted(v for _, v in new.sent) == [bytes([p]) for p in range(24)]
    # a send that fails on the producer put in place too is not sent a third time: it fails
    new.broken = True
    monkeypatch.setattr(runtime._publisher, "make", lambda: Producer(broken=True))
    with pytest.raises(OutOfOrderSequenceNumber):
        await runtime.send("hvc.clock.v1", None, b"x", [])
    assert len(Producer.made) == 3 and new.stopped


async def test_a_cli_runs_sends_renew_the_producer_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The annual evaluation publishes through `kafka.producer`: a broker restart in its run
    no longer fails every send after it."""
    Producer.made = []
    states = iter([True, False])  # the first producer broken, the one after it not
    monkeypatch.setattr(kafka, "idempotent_producer", lambda *a, **k: Producer(next(states)))
    async with kafka.producer(KafkaSettings()) as send:
        answers = await asyncio.gather(*(send("t", None, bytes([n]), []) for n in range(5)))
    assert answers == ["ok"] * 5
    [old, new] = Producer.made
    assert old.stopped and new.stopped and len(new.sent) == 5
