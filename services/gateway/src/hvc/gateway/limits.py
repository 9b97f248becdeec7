"""Per-caller rate limiting (a token bucket per caller, in this process)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    per_minute: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def wait(self, caller: str, now: float | None = None) -> float | None:
        """None if `caller` has a token left now (none is taken); else the seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, at = self.buckets.get(caller, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        return None if tokens >= 1.0 else (1.0 - tokens) / rate

    def take(self, caller: str, now: float | None = None) -> float | None:
        """None if allowed; else the seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, at = self.buckets.get(caller, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens < 1.0:
            self.buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate
        self.buckets[caller] = (tokens - 1.0, now)
        if len(self.buckets) > 100_000:  # forget idle callers
            self.buckets = dict(list(self.buckets.items())[-50_000:])
        return None
