"""Builds the complaints service: policies, its pipeline on the stream engine, the tiering
frontier its filings wait for, the desk and the HTTP app."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from fastapi import FastAPI

from hvc.common import workcal
from hvc.common.clock import EventClock
from hvc.common.service import ServiceRuntime, stream_group
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline
from hvc.complaints import pipeline
from hvc.complaints.api.routes import make_router
from hvc.complaints.desk import Desk
from hvc.complaints.domain.policy import SlaPolicy, load_policies
from hvc.complaints.domain.roster import load_roster
from hvc.complaints.frontier import TieringFrontier
from hvc.complaints.pipeline import ComplaintsHandler
from hvc.complaints.repository import Repository
from hvc.complaints.settings import ComplaintsSettings

log = logging.getLogger(__name__)


def bootstrap(
    *,
    name: str = "complaints",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    settings: ComplaintsSettings | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    """`now`: the clock of the HTTP side and of the ticks (tests inject one; it then runs as
    the event clock: its ticks carry its time)."""
    settings = settings or ComplaintsSettings()
    # Invalid policies or an invalid working calendar stop start-up.
    working = workcal.load(settings.working_calendar_file)
    policies = load_policies(settings.policy_dir, working)
    _check_calendar(working, policies, now() if now else dt.datetime.now(dt.UTC))
    roster = load_roster(settings.roster_file)
    for policy in policies:
        roster.covers(policy.escalation_levels)
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    wall = settings.clock == "wall" and now is None
    clock = EventClock(wall=wall)
    frontier = TieringFrontier(
        runtime.kafka,
        tiering_group=settings.tiering_group,
        tiering_inputs=settings.tiering_inputs,
        decisions_topic=pipeline.TIERS,
        own_group=stream_group(runtime.name, runtime.mongo_settings.database),
        wait_s=settings.tiering_wait_seconds,
    )
    repo = Repository(runtime.db)
    runtime.on_start(repo.ensure_indexes)
    runtime.every(frontier.poll_s, "tiering-frontier", frontier.step)
    runtime.on_stop(frontier.stop)
    runtime.stream(
        Pipeline.of(
            name,
            pipeline.INPUTS,
            ComplaintsHandler(policies, frontier, clock, roster),
            clock=True,  # the ticks release parked filings and move the milestones' time
            event_ticks=not wall,
        ),
        commit_interval_s=settings.flush_interval_seconds,
        clock_tick_s=settings.tick_seconds,
        event_clock=None if wall else (now or clock.now),
    )
    desk = Desk(repo, runtime.send, now or clock.now, wait_s=settings.command_wait_seconds)
    api = runtime.http_app(make_router(desk), title="hvc complaints")
    api.state.desk = desk
    api.state.frontier = frontier
    return runtime, api


def _check_calendar(
    working: workcal.WorkingCalendar, policies: list[SlaPolicy], now: dt.datetime
) -> None:
    """Say so when a policy counts working hours and the calendar lacks this year's or next
    year's notice: those days count as plain weekdays and weekends until it is replaced."""
    if not any(p.uses_working_calendar() for p in policies):
        return
    this = now.date()
    for day in (this, this.replace(year=this.year + 1, month=1, day=1)):
        if not working.covers(day):
            log.warning(
                "the working calendar lacks the holiday notice of a year: replace it",
                extra={"calendar": working.name, "version": working.version, "year": day.year},
            )
