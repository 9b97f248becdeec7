"""A bound on the whole-collection reads (reports, dry runs) one process runs at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hvc.common.problems import Problem
from hvc.common.settings import HvcSettings


class Scans:
    """At most `concurrency` scans at once; a request that cannot start one within
    `queue_s` is answered 503 with Retry-After instead of queueing without bound.

    Each scan holds store cursors (and, on the local FerretDB, a pooled SQLite connection per
    cursor) for as long as it runs, and concurrent scans share the same two cores, so each one
    more makes all of them slower: thirty-odd reports at once held a hundred cursors on one
    database for minutes, which is how the local store's pool ran dry (README, "The local
    store"). A waiting request holds nothing.
    """

    def __init__(self, concurrency: int, queue_s: float) -> None:
        self.queue_s = queue_s
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def from_settings(cls, settings: HvcSettings | None = None) -> Scans:
        s = settings or HvcSettings()
        return cls(s.scan_concurrency, s.scan_queue_seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_s)
        except TimeoutError:
            raise Problem(
                503,
                "Too many reports at once",
                f"no report slot came free within {self.queue_s:g}s; try again shortly",
                headers={"Retry-After": str(max(1, round(self.queue_s)))},
            ) from None
        try:
            yield
        finally:
            self._slots.release()
