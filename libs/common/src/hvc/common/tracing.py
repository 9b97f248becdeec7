"""The cause of what a service publishes: the input record it was handling.

Every record a stream service publishes while it handles an input record carries two headers:
`hvc-cause` (`topic/partition/offset` of that record) and `hvc-cause-ts` (its broker timestamp,
epoch milliseconds). An operator follows a decision back to the event that made it, and the
end-to-end benchmark measures publish → decision latency from them. What is published outside
the handling of a record (a recovery re-publishing, a wall-clock timer, the gateway) carries
neither.

What a stream service's timer published (a month's close, a bill's due day: hvc.common.streams
fires the timers a record's event time passed before that record) also carries `hvc-due`:
`<what>/<due>`, the timer's kind and its due time (event time, epoch milliseconds). Its cause is
still the record that moved event time past it; the header tells a decision the calendar made
due from one an event made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

CAUSE = "hvc-cause"
CAUSE_TS = "hvc-cause-ts"
DUE = "hvc-due"


def due(what: str, due_ms: int) -> tuple[str, bytes]:
    """The header of what a timer of kind `what`, due at `due_ms`, published."""
    return DUE, f"{what}/{due_ms}".encode()


def parse_due(headers: Any) -> tuple[str, int] | None:
    """(kind, due ms) of the timer that published a record, if a timer did."""
    found = dict(headers or ()).get(DUE)
    if found is None:
        return None
    what, _, at = found.decode().rpartition("/")
    return what, int(at)


@dataclass(frozen=True)
class Cause:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (CAUSE, f"{self.topic}/{self.partition}/{self.offset}".encode()),
            (CAUSE_TS, str(self.timestamp_ms).encode()),
        ]


_current: ContextVar[Cause | None] = ContextVar("hvc_cause", default=None)


def headers() -> list[tuple[str, bytes]]:
    """The headers naming the record being handled in this context (none outside one)."""
    cause = _current.get()
    return cause.headers() if cause is not None else []


def current() -> Cause | None:
    """The record being handled in this context, if any."""
    return _current.get()


@contextmanager
def caused_by(cause: Cause | None) -> Iterator[None]:
    token = _current.set(cause)
    try:
        yield
    finally:
        _current.reset(token)


def bind(effect: Callable[[], Awaitable[Any]], cause: Cause) -> Callable[[], Awaitable[Any]]:
    """The effect, run later (and retried) with `cause` as the record being handled."""

    async def run() -> Any:
        with caused_by(cause):
            return await effect()

    return run


def parse(headers: Any) -> tuple[str, int] | None:
    """(`topic/partition/offset`, timestamp ms) from a record's headers, if it has a cause."""
    found = dict(headers or ())
    if CAUSE not in found or CAUSE_TS not in found:
        return None
    return found[CAUSE].decode(), int(found[CAUSE_TS])
