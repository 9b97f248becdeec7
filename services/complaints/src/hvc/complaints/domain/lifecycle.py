"""A complaint as the fold of its recorded changes: lifecycle, SLA clocks and milestones.

Pure: every function takes the instant it judges at, so a replay judges the same.

Clocks are stored as their history, not as a counter: the first-response clock runs from
filing until the first acknowledgement; the resolution clock runs while the complaint is open,
stops when it is resolved and runs again if it is reopened. `PENDING_CUSTOMER` pauses both, up
to the policy's cap per pause, after which the clock runs again. Elapsed time is working time
on the policy's calendar, so a pause or a policy change never loses time already counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvc.complaints.domain.calendar import Calendar, calendar_of
from hvc.complaints.domain.policy import SlaPolicy, Targets

STATUSES = (
    "RECEIVED",
    "ACKNOWLEDGED",
    "DISPATCHED",
    "IN_PROGRESS",
    "PENDING_CUSTOMER",
    "RESOLVED",
    "CALLBACK_DONE",
    "CLOSED",
    "REOPENED",
)
WORKING = ("ACKNOWLEDGED", "DISPATCHED", "IN_PROGRESS", "REOPENED")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "RECEIVED": ("ACKNOWLEDGED", "PENDING_CUSTOMER", "RESOLVED"),
    "ACKNOWLEDGED": ("DISPATCHED", "IN_PROGRESS", "PENDING_CUSTOMER", "RESOLVED"),
    "DISPATCHED": ("IN_PROGRESS", "PENDING_CUSTOMER", "RESOLVED"),
    "IN_PROGRESS": ("DISPATCHED", "PENDING_CUSTOMER", "RESOLVED"),
    "PENDING_CUSTOMER": ("ACKNOWLEDGED", "DISPATCHED", "IN_PROGRESS", "RESOLVED"),
    "RESOLVED": ("CALLBACK_DONE", "CLOSED", "REOPENED"),
    "CALLBACK_DONE": ("CLOSED", "REOPENED"),
    "CLOSED": ("REOPENED",),
    "REOPENED": ("DISPATCHED", "IN_PROGRESS", "PENDING_CUSTOMER", "RESOLVED"),
}
STOPPED = ("RESOLVED", "CALLBACK_DONE", "CLOSED")
ACKED = tuple(s for s in STATUSES if s not in ("RECEIVED", "PENDING_CUSTOMER"))
CLOCKS = ("first_response", "resolution")


class InvalidTransition(ValueError):
    pass


@dataclass(frozen=True)
class Milestone:
    clock: str  # first_response | resolution
    percent: int  # 80 at risk, 100 breached, then one per escalation step
    at: dt.datetime

    @property
    def key(self) -> str:
        return f"{self.clock}:{self.percent}"


@dataclass
class Complaint:
    complaint_id: str
    customer_id: str
    channel: str
    category: str
    text: str
    filed_at: dt.datetime
    tier: str
    policy: SlaPolicy
    targets: Targets
    history: list[tuple[str, dt.datetime]] = field(default_factory=list)
    work_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    satisfaction: int | None = None
    updated_at: dt.datetime | None = None
    seq: int = 0

    @property
    def status(self) -> str:
        return self.history[-1][0]

    @property
    def calendar(self) -> Calendar:
        return calendar_of(self.policy.calendar_for(self.channel), self.policy.zone)

    # -- clocks --------------------------------------------------------------------------

    def _segments(self, clock: str, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The clock's running intervals up to `now` (the last may end at `now`)."""
        cap = dt.timedelta(minutes=self.policy.pause_cap_minutes)
        out: list[tuple[dt.datetime, dt.datetime]] = []
        running_since: dt.datetime | None = self.filed_at
        paused_at: dt.datetime | None = None
        for status, at in self.history[1:]:
            if at > now:
                break
            if paused_at is not None and running_since is None and at > paused_at + cap:
                running_since = paused_at + cap  # the pause outlived its cap
            stop = status == "PENDING_CUSTOMER" or (
                status in ACKED if clock == "first_response" else status in STOPPED
            )
            if clock == "first_response" and self._acked_before(at):
                stop = True  # stopped for good at the first acknowledgement
            if stop and running_since is not None:
                out.append((running_since, at))
                running_since = None
            elif not stop and running_since is None:
                running_since = at
            paused_at = at if status == "PENDING_CUSTOMER" else None
        if running_since is None and paused_at is not None and now > paused_at + cap:
            running_since = paused_at + cap
        if running_since is not None and now > running_since:
            out.append((running_since, now))
        return out

    def _acked_before(self, at: dt.datetime) -> bool:
        return any(s in ACKED and t < at for s, t in self.history[1:])

    def target_seconds(self, clock: str) -> float:
        t = self.targets
        minutes = t.first_response_minutes if clock == "first_response" else t.resolution_minutes
        return minutes * 60.0

    def elapsed(self, clock: str, now: dt.datetime) -> float:
        cal = self.calendar
        return sum(cal.working_seconds(a, b) for a, b in self._segments(clock, now))

    def running(self, clock: str, now: dt.datetime) -> bool:
        """Running, or paused with a known restart (the pause cap)."""
        if clock == "first_response":
            return not self._acked_before(now + dt.timedelta(microseconds=1))
        return self.status not in STOPPED

    def instant_at(self, clock: str, seconds: float, now: dt.datetime) -> dt.datetime | None:
        """When the clock reaches `seconds` of working time: in the past if it did, projected
        from `now` if it is running (or paused, from the pause's cap), None if stopped."""
        cal = self.calendar
        counted = 0.0
        for a, b in self._segments(clock, now):
            span = cal.working_seconds(a, b)
            if counted + span >= seconds:
                return cal.add(a, seconds - counted)
            counted += span
        if not self.running(clock, now):
            return None
        resume = now
        if self.status == "PENDING_CUSTOMER":
            resume = max(
                now, self.history[-1][1] + dt.timedelta(minutes=self.policy.pause_cap_minutes)
            )
        return cal.add(resume, seconds - counted)

    def due_at(self, clock: str, now: dt.datetime) -> dt.datetime | None:
        return self.instant_at(clock, self.target_seconds(clock), now)

    # -- milestones ----------------------------------------------------------------------

    def percents(self) -> list[int]:
        p = self.policy
        steps = len(p.escalation_levels) - 1
        return [p.at_risk_percent] + [100 + i * p.escalation_step_percent for i in range(steps)]

    def milestones(self, now: dt.datetime) -> list[Milestone]:
        """Every milestone reached by `now`, and the next one of each running clock."""
        out = []
        for clock in CLOCKS:
            for pct in self.percents():
                at = self.instant_at(clock, self.target_seconds(clock) * pct / 100, now)
                if at is not None:
                    out.append(Milestone(clock, pct, at))
        return sorted(out, key=lambda m: (m.at, m.clock, m.percent))

    def reached(self, now: dt.datetime) -> list[Milestone]:
        return [m for m in self.milestones(now) if m.at <= now]

    def sla(self, now: dt.datetime) -> tuple[str, int]:
        """(ON_TRACK | AT_RISK | BREACHED, escalation level index) at `now`."""
        reached = self.reached(now)
        breaches = [m for m in reached if m.percent >= 100]
        if breaches:
            per_clock = max(sum(1 for m in breaches if m.clock == c) for c in CLOCKS)
            return "BREACHED", min(per_clock, len(self.policy.escalation_levels) - 1)
        return ("AT_RISK", 0) if reached else ("ON_TRACK", 0)

    def next_milestone(self, now: dt.datetime) -> dt.datetime | None:
        future = [m.at for m in self.milestones(now) if m.at > now]
        return min(future) if future else None

    # -- measures ------------------------------------------------------------------------

    def first_resolution_s(self) -> float | None:
        first = next((t for s, t in self.history if s == "RESOLVED"), None)
        return None if first is None else self.elapsed("resolution", first)

    def final_resolution_s(self) -> float | None:
        last = next((t for s, t in reversed(self.history) if s == "RESOLVED"), None)
        if last is None or self.status not in STOPPED:
            return None
        return self.elapsed("resolution", last)


def check_transition(current: str, to: str) -> None:
    if to not in STATUSES:
        raise InvalidTransition(f"unknown status {to}")
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current]) or "none"
        raise InvalidTransition(f"{current} cannot become {to} (allowed: {allowed})")


def fold(changes: Iterable[dict[str, Any]], policies: Sequence[SlaPolicy]) -> Complaint:
    """Rebuild a complaint from its recorded changes, oldest first."""
    c: Complaint | None = None
    by_version = {p.version: p for p in policies}
    for ch in changes:
        at = _utc(ch["at"])
        kind = ch["kind"]
        if kind == "FILED":
            policy = by_version[ch["policy_version"]]
            c = Complaint(
                ch["complaint_id"],
                ch["customer_id"],
                ch["channel"],
                ch["category"],
                ch["text"],
                at,
                ch["tier"],
                policy,
                Targets(**ch["targets"]),
                [("RECEIVED", at)],
            )
        elif c is None:
            raise ValueError("a complaint's first change must be FILED")
        elif kind == "TRANSITION":
            c.history.append((ch["to"], at))
            if ch.get("satisfaction") is not None:
                c.satisfaction = ch["satisfaction"]
            if ch.get("department"):
                c.work_orders[ch["work_order_id"]] = {
                    "work_order_id": ch["work_order_id"],
                    "department": ch["department"],
                    "dispatched_at": at,
                    "completed_at": None,
                    "result": None,
                }
        elif kind == "WORK_ORDER_DONE":
            wo = c.work_orders[ch["work_order_id"]]
            wo["completed_at"], wo["result"] = at, ch.get("result", "")
        elif kind == "TIER_CHANGED":
            c.tier = ch["tier"]
            c.targets = c.targets.stricter(Targets(**ch["targets"]))
        c.updated_at = at
        c.seq = ch["seq"]
    if c is None:
        raise ValueError("no changes")
    return c


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d.astimezone(dt.UTC)
