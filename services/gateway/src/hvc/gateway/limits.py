"""Per-caller rate limiting: a token bucket per caller in this process, and the same limit
across the gateway's replicas through the store (`SharedWindows`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase


@dataclass
class RateLimiter:
    per_minute: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def _tokens(self, caller: str, now: float) -> float:
        """The caller's tokens at `now`, refilled since its last request."""
        tokens, at = self.buckets.get(caller, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)

    def wait(self, caller: str, now: float | None = None) -> float | None:
        """None if `caller` has a token left now (none is taken); else the seconds to wait."""
        tokens = self._tokens(caller, time.monotonic() if now is None else now)
        return None if tokens >= 1.0 else (1.0 - tokens) / (self.per_minute / 60.0)

    def take(self, caller: str, now: float | None = None) -> float | None:
        """None if allowed; else the seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens = self._tokens(caller, now)
        if tokens < 1.0:
            self.buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate
        self.buckets[caller] = (tokens - 1.0, now)
        if len(self.buckets) > 100_000:  # forget idle callers
            self.buckets = dict(list(self.buckets.items())[-50_000:])
        return None


class SharedWindows:
    """The per-caller limit across the gateway's replicas (issue 20, item 5): each process
    counts its callers' requests per minute window and adds them to the store every second
    (one bulk `$inc`), then reads back the windows' totals of the callers it counted; a caller
    whose total in the current window is over `per_minute` is refused by every replica until
    the window ends. So N replicas allow `per_minute` (plus at most a second of traffic),
    not N times it, at one store round trip per process and second, none per request. The
    process's own bucket (`RateLimiter`) still refuses a burst at once."""

    WINDOW_S = 60

    def __init__(
        self,
        db: AsyncDatabase[Any],
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.col = db["rate_windows"]
        self.per_minute = per_minute
        self.clock = clock
        self._counts: Counter[tuple[str, int]] = Counter()
        self._seen: set[tuple[str, int]] = set()  # callers counted here in the live windows
        self._over: dict[str, float] = {}  # caller -> when its window ends
        self._swept = 0.0

    def _window(self, now: float) -> int:
        return int(now // self.WINDOW_S) * self.WINDOW_S

    def take(self, caller: str) -> float | None:
        """None if allowed (and counted); else the seconds to wait."""
        now = self.clock()
        until = self._over.get(caller)
        if until is not None:
            if until > now:
                return until - now
            del self._over[caller]
        key = (caller, self._window(now))
        self._counts[key] += 1
        self._seen.add(key)
        return None

    async def sync(self) -> None:
        """Add this process's counts to the store and learn who is over (every second)."""
        counts, self._counts = self._counts, Counter()
        if counts:
            ops = [
                UpdateOne(
                    {"_id": f"{window}|{caller}"},
                    {"$inc": {"n": n}, "$setOnInsert": {"window": window, "caller": caller}},
                    upsert=True,
                )
                for (caller, window), n in counts.items()
            ]
            try:
                await self.col.bulk_write(ops, ordered=False)
            except Exception:
                self._counts.update(counts)  # counted next time
                raise
        # The totals of every caller this process counted in the live window: the others'
        # counts may have pushed one over since.
        now = self.clock()
        live = self._window(now)
        self._seen = {k for k in self._seen if k[1] >= live}
        if self._seen:
            ids = [f"{window}|{caller}" for caller, window in self._seen]
            async for d in self.col.find({"_id": {"$in": ids}}):
                if d["n"] > self.per_minute:
                    self._over[d["caller"]] = d["window"] + self.WINDOW_S
        if now - self._swept >= self.WINDOW_S:  # windows older than the last two are moot
            self._swept = now
            await self.col.delete_many({"window": {"$lt": self._window(now) - self.WINDOW_S}})
