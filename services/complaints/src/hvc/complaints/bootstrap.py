"""Builds the complaints service: policies, repository, desk, agents, timers and HTTP app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI

from hvc.common.clock import EventClock
from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.complaints import agents
from hvc.complaints.api.routes import make_router
from hvc.complaints.desk import Desk
from hvc.complaints.domain.policy import load_policies
from hvc.complaints.frontier import TieringFrontier
from hvc.complaints.repository import Repository
from hvc.complaints.settings import ComplaintsSettings


def bootstrap(
    *,
    name: str = "complaints",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    settings: ComplaintsSettings | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or ComplaintsSettings()
    policies = load_policies(settings.policy_dir)  # invalid policies stop start-up
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    repo = Repository(runtime.db)
    clock = EventClock(wall=settings.clock == "wall")
    desk = Desk(repo, policies, runtime.send, now or clock.now)
    frontier = TieringFrontier(
        runtime.kafka,
        tiering_group=settings.tiering_group,
        tiering_inputs=settings.tiering_inputs,
        decisions_topic="hvc.tier-decisions.v1",
        own_group=runtime.name,
        handled=runtime.handled,
        wait_s=settings.tiering_wait_seconds,
    )
    runtime.on_start(repo.ensure_indexes)
    runtime.on_stop(frontier.stop)
    agents.register(runtime, desk, clock, frontier)
    runtime.every(settings.tick_seconds, "sla-timers", desk.tick)
    api = runtime.http_app(make_router(desk), title="hvc complaints")
    api.state.desk = desk
    return runtime, api
