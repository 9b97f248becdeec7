"""Builds the benefits service: catalogue, ledger, its pipeline on the stream engine, HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI

from hvc.benefits import pipeline
from hvc.benefits.api.routes import make_router
from hvc.benefits.domain.catalogue import load_catalogue
from hvc.benefits.entitlements import Entitlements
from hvc.benefits.ledger import Ledger
from hvc.benefits.pipeline import BenefitsHandler
from hvc.benefits.settings import BenefitsSettings
from hvc.common.clock import EventClock
from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline


def bootstrap(
    *,
    name: str = "benefits",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    settings: BenefitsSettings | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or BenefitsSettings()
    catalogue = load_catalogue(settings.catalogue_file)  # an invalid catalogue stops start-up
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    wall = settings.clock == "wall"
    clock = EventClock(wall=wall)
    ledger = Ledger(runtime.db, runtime.send)
    ent = Entitlements(ledger, catalogue, now or clock.now)
    runtime.on_start(ledger.ensure_indexes)
    runtime.on_start(ledger.republish)  # claims a crash left unpublished
    handler = BenefitsHandler(catalogue, settings.close_grace_seconds, clock)
    runtime.stream(
        Pipeline.of(name, pipeline.INPUTS, handler, clock=wall),
        commit_interval_s=settings.flush_interval_seconds,
        clock_tick_s=settings.clock_tick_seconds if wall else None,
    )
    api = runtime.http_app(make_router(ent), title="hvc benefits")
    api.state.entitlements = ent
    return runtime, api
