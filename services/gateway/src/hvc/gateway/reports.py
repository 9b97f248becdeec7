"""Reports through the gateway: each is a full scan in its service (10-18 s at 100,000
customers), so the same report with the same parameters is fetched once per `ttl_s` and
shared by every caller meanwhile (the callers of one in flight wait for it), and at most
`concurrency` different ones are fetched at once; the others wait their turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Key = tuple[str, tuple[tuple[str, str], ...]]


class ReportCache:
    def __init__(
        self, ttl_s: float, concurrency: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._done: dict[Key, tuple[float, Any]] = {}
        self._inflight: dict[Key, asyncio.Task[Any]] = {}
        self.fetches = 0

    async def get(
        self, name: str, params: dict[str, str], fetch: Callable[[], Awaitable[Any]]
    ) -> Any:
        key: Key = (name, tuple(sorted(params.items())))
        hit = self._done.get(key)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(self._fetch(key, fetch))
        return await asyncio.shield(task)

    async def _fetch(self, key: Key, fetch: Callable[[], Awaitable[Any]]) -> Any:
        try:
            async with self._slots:
                self.fetches += 1
                body = await fetch()
            self._done[key] = (self.clock(), body)
            if len(self._done) > 256:  # the parameters are few; drop the oldest past that
                oldest = min(self._done, key=lambda k: self._done[k][0])
                del self._done[oldest]
            return body
        finally:
            self._inflight.pop(key, None)
