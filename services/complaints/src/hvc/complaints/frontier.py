"""How far tiering has decided: a filing waits until every decision known when it was filed is
here, so that its tier does not depend on which of two topics arrived first.

A complaint takes the tier known when it was filed. Tiering publishes its decisions on another
topic, from its own consumption of its own inputs, so a decision caused before a filing can
arrive after it (tiering behind, restarting, or just slower). The filing would then take the
old tier and the decision, arriving, would change it: an outcome of arrival order, not of the
inputs. Instead, "known when filed" is defined by publication order, which is the same on every
run of the same inputs:

- a filing was published at T (its record's timestamp);
- a decision was known by then if the input record that caused it (its `hvc-cause-ts` header,
  hvc.common.tracing; the decision's own timestamp if it names no cause) was published by T.

Before a filing is handled, this waits until tiering's consumer group has committed, on every
partition of tiering's inputs, past the records published by T (tiering commits only after
its decisions are published), and until this service has handled every decision on its topic
up to the end as it is then. Every decision known at T is then here; the later ones are told
apart by their cause time.

The wait is bounded (`HVC_COMPLAINTS_TIERING_WAIT_SECONDS` after the filing was published):
a tiering that is down does not stop complaints being filed. A filing that waited out is filed
with the decisions here, counted in `hvc_complaints_tiering_waited_out_total` and logged; a
decision known at its filing that arrives later is then a tier change on the complaint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter

from hvc.common.settings import KafkaSettings
from hvc.common.topics import spec

log = logging.getLogger(__name__)

WAITED_OUT = Counter(
    "hvc_complaints_tiering_waited_out_total",
    "Filings handled before tiering had decided up to them (it was down or far behind)",
)


class TieringFrontier:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        tiering_group: str,
        tiering_inputs: Sequence[str],
        decisions_topic: str,
        own_group: str,
        handled: Mapping[tuple[str, int], int],
        wait_s: float,
        poll_s: float = 0.2,
    ) -> None:
        self.kafka = kafka
        self.tiering_group = tiering_group
        self.inputs = [TopicPartition(t, p) for t in tiering_inputs for p in _parts(t)]
        self.decisions = [TopicPartition(decisions_topic, p) for p in _parts(decisions_topic)]
        self.own_group = own_group
        self.handled = handled
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.through_ms = 0  # every filing published by then may be handled
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    @property
    def enabled(self) -> bool:
        return self.wait_s > 0

    async def stop(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def wait_through(self, ts_ms: int) -> bool:
        """Wait until the decisions known at `ts_ms` are all handled here; False if it waited
        out (or is off)."""
        if not self.enabled:
            return False
        if ts_ms <= self.through_ms:
            return True
        # Counted from when the filing was published, not from now: with tiering down, a
        # backlog of filings is not held `wait_s` each, and one older than that is looked at
        # once.
        budget = ts_ms / 1000 + self.wait_s - time.time()
        deadline = time.monotonic() + max(budget, 0.0)
        while True:
            try:
                if await self._tiering_through(ts_ms) and await self._decisions_handled():
                    self.through_ms = max(self.through_ms, ts_ms)
                    return True
            except Exception:
                # The broker went away: as good as not there yet (the wait is bounded).
                log.warning("tiering frontier unknown; waiting", exc_info=True)
                with contextlib.suppress(Exception):  # clients of a broker that went away
                    await self.stop()
            if time.monotonic() >= deadline:
                WAITED_OUT.inc()
                log.warning(
                    "filing handled before tiering had decided up to it",
                    extra={"published_ms": ts_ms, "wait_s": self.wait_s},
                )
                return False
            await asyncio.sleep(self.poll_s)

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            await self.stop()
            kw: dict[str, Any] = {
                "bootstrap_servers": self.kafka.bootstrap_servers,
                "request_timeout_ms": 5000,
                **self.kafka.client_kwargs(),
            }
            consumer = AIOKafkaConsumer(enable_auto_commit=False, **kw)
            admin = AIOKafkaAdminClient(**kw)
            try:
                await consumer.start()
                await admin.start()
            except Exception:
                await consumer.stop()
                await admin.close()
                raise
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def _tiering_through(self, ts_ms: int) -> bool:
        """Tiering's group has committed past every input record published by `ts_ms`."""
        consumer, admin = await self._clients()
        after = await consumer.offsets_for_times({tp: ts_ms + 1 for tp in self.inputs})
        ends = await consumer.end_offsets(self.inputs)
        need = {tp: (found.offset if found else ends[tp]) for tp, found in after.items()}
        done = await admin.list_consumer_group_offsets(self.tiering_group, partitions=self.inputs)
        return all(_offset(done.get(tp)) >= n for tp, n in need.items() if n > 0)

    async def _decisions_handled(self) -> bool:
        """This service has handled every decision published so far."""
        consumer, admin = await self._clients()
        ends = await consumer.end_offsets(self.decisions)
        behind = [
            tp for tp in self.decisions if self.handled.get((tp.topic, tp.partition), 0) < ends[tp]
        ]
        if not behind:
            return True
        # Partitions this process has handled nothing of yet: where its group stands.
        done = await admin.list_consumer_group_offsets(self.own_group, partitions=behind)
        return all(_offset(done.get(tp)) >= ends[tp] for tp in behind)


def _parts(topic: str) -> range:
    return range(spec(topic).partitions)


def _offset(committed: Any) -> int:
    return -1 if committed is None else int(committed.offset)
