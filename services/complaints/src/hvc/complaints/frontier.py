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

A filing is filed once tiering's consumer group has committed, on every partition of tiering's
inputs, past the records published by T (tiering commits only after its decisions are
published), and once this service's pipeline has handled its partition of the decisions' topic
up to its end as it was then. Every decision known at T is then here; the later ones are told
apart by their cause time.

The pipeline does not wait for this (its partitions' other records go on): a filing the
frontier does not release yet is parked in the partition's state, in order, and filed when it
is (hvc.complaints.pipeline). This object is shared by the pipeline's thread, which asks
(`released`) and reports what it handled (`decided`), and a task on the service's loop, which
looks at the broker (`run`) for the publication times parked filings wait for.

The wait is bounded (`HVC_COMPLAINTS_TIERING_WAIT_SECONDS` after the filing was published):
a tiering that is down does not stop complaints being filed. A filing that waited out is filed
with the decisions here, counted in `hvc_complaints_tiering_waited_out_total` and logged; a
decision known at its filing that arrives later is then a tier change on the complaint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter

from hvc.common.settings import KafkaSettings
from hvc.common.topics import spec

log = logging.getLogger(__name__)
LOOKS_KEPT = 256  # past that, filings are held to a later look's ends (a little longer)

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
        wait_s: float,
        poll_s: float = 0.2,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.kafka = kafka
        self.tiering_group = tiering_group
        self.inputs = [TopicPartition(t, p) for t in tiering_inputs for p in _parts(t)]
        self.decisions_topic = decisions_topic
        self.decisions = [TopicPartition(decisions_topic, p) for p in _parts(decisions_topic)]
        self.own_group = own_group
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.wall = wall
        self._lock = threading.Lock()
        self._wanted: set[int] = set()  # publication times parked filings wait for
        # What the broker said: tiering was through `through_ms` when the decisions'
        # partitions ended at `ends`, oldest first (a filing needs the first that covers it,
        # not the newest: under a steady feed of decisions, the pipeline is always a little
        # behind the latest ends); and what this service has handled of them.
        self.through_ms = 0
        self._looks: list[tuple[int, dict[int, int]]] = []
        self._handled: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    @property
    def enabled(self) -> bool:
        return self.wait_s > 0

    # -- the pipeline's side (its thread) ----------------------------------------------------

    def released(self, partition: int, published_ms: int) -> bool:
        """Whether a filing published at `published_ms`, on `partition`, may be filed now:
        every decision known then is handled here, or it has waited `wait_s`."""
        if not self.enabled:
            return True
        with self._lock:
            if published_ms <= self.through_ms:
                ends = next(e for t, e in self._looks if t >= published_ms)
                if self._handled.get(partition, 0) >= ends.get(partition, 0):
                    return True
            else:
                self._wanted.add(published_ms)
        if published_ms / 1000 + self.wait_s <= self.wall():
            WAITED_OUT.inc()
            log.warning(
                "filing handled before tiering had decided up to it",
                extra={"published_ms": published_ms, "wait_s": self.wait_s},
            )
            return True
        return False

    def decided(self, partition: int, offset: int) -> None:
        """The pipeline handled the decision at `offset` of `partition`."""
        with self._lock:
            if offset + 1 > self._handled.get(partition, 0):
                self._handled[partition] = offset + 1

    def describe(self) -> dict[str, Any]:
        """Where the frontier stands (for a test's failure message and a debugging session)."""
        with self._lock:
            return {
                "through_ms": self.through_ms,
                "wanted": sorted(self._wanted),
                "last_look": self._looks[-1] if self._looks else None,
                "handled": dict(self._handled),
            }

    # -- the broker's side (the service's loop) ----------------------------------------------

    async def step(self) -> None:
        """Look at the broker for the times parked filings wait for (every `poll_s`)."""
        with self._lock:
            wanted = sorted(t for t in self._wanted if t > self.through_ms)
            self._wanted = set(wanted)
        if not wanted:
            return
        try:
            await self._look(wanted)
        except Exception:
            # The broker went away: as good as not there yet (the wait is bounded).
            log.warning("tiering frontier unknown; waiting", exc_info=True)
            with contextlib.suppress(Exception):  # clients of a broker that went away
                await self.stop()

    async def _look(self, wanted: list[int]) -> None:
        through = 0
        if await self._tiering_through(wanted[-1]):
            through = wanted[-1]
        else:
            for t in wanted[:-1]:
                if not await self._tiering_through(t):
                    break
                through = t
        if not through:
            return
        ends, committed = await self._decisions()
        with self._lock:
            for p, n in committed.items():
                if n > self._handled.get(p, 0):
                    self._handled[p] = n
            if through > self.through_ms:
                self._looks.append((through, ends))
                self.through_ms = through
            del self._looks[:-LOOKS_KEPT]

    async def stop(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

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

    async def _decisions(self) -> tuple[dict[int, int], dict[int, int]]:
        """The decisions' partitions: their ends, and where this service's group stands (for
        partitions this process has handled nothing of yet)."""
        consumer, admin = await self._clients()
        ends = await consumer.end_offsets(self.decisions)
        done = await admin.list_consumer_group_offsets(self.own_group, partitions=self.decisions)
        return (
            {tp.partition: ends[tp] for tp in self.decisions},
            {tp.partition: _offset(done.get(tp)) for tp in self.decisions},
        )

    async def _tiering_through(self, ts_ms: int) -> bool:
        """Tiering's group has committed past every input record published by `ts_ms`."""
        consumer, admin = await self._clients()
        after = await consumer.offsets_for_times({tp: ts_ms + 1 for tp in self.inputs})
        ends = await consumer.end_offsets(self.inputs)
        need = {tp: (found.offset if found else ends[tp]) for tp, found in after.items()}
        done = await admin.list_consumer_group_offsets(self.tiering_group, partitions=self.inputs)
        return all(_offset(done.get(tp)) >= n for tp, n in need.items() if n > 0)


def _parts(topic: str) -> range:
    return range(spec(topic).partitions)


def _offset(committed: Any) -> int:
    return -1 if committed is None else int(committed.offset)
