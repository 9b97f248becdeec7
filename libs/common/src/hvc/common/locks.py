"""Per-key async locks: one writer per key inside a process.

FerretDB v1 on SQLite applies an update as read-modify-write outside a transaction, so two
concurrent updates of one document can lose one of them (FerretDB issue #3040; measured here:
100 concurrent $inc on one document left 8). MongoDB is atomic per document. Services that
read-modify-write a document take its key's lock, so the local store is correct too; across
processes, conditional updates (atomic on MongoDB) and partitioning by key do the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        """Hold the locks of all `keys`, taken in sorted order: two holders never deadlock."""
        ordered = sorted(set(keys))
        taken: list[str] = []
        try:
            for k in ordered:
                lock = self._locks.setdefault(k, asyncio.Lock())
                self._waiters[k] = self._waiters.get(k, 0) + 1
                await lock.acquire()
                taken.append(k)
            yield
        finally:
            for k in reversed(ordered):
                if k in taken:
                    self._locks[k].release()
                self._waiters[k] -= 1
                if self._waiters[k] == 0:
                    del self._waiters[k], self._locks[k]

    def __len__(self) -> int:
        return len(self._locks)
