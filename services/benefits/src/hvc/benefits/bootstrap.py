"""Builds the benefits service: catalogue, ledger, entitlements, keyed streams, timers, HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI

from hvc.benefits import streams
from hvc.benefits.api.routes import make_router
from hvc.benefits.directory import Directory
from hvc.benefits.domain.catalogue import load_catalogue
from hvc.benefits.entitlements import Entitlements
from hvc.benefits.ledger import Ledger
from hvc.benefits.settings import BenefitsSettings
from hvc.common.clock import EventClock
from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings


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
    clock = EventClock(wall=settings.clock == "wall")
    ledger = Ledger(runtime.db, runtime.send)
    ent = Entitlements(ledger, catalogue, Directory(), now or clock.now)
    runtime.on_start(ledger.ensure_indexes)
    runtime.keyed_streams(
        streams.processors(ent, clock, settings.close_grace_seconds),
        flush_interval_s=settings.flush_interval_seconds,
        wall_clock=settings.clock == "wall",
    )
    runtime.every(settings.tick_seconds, "benefit-expiry", ent.tick)
    api = runtime.http_app(make_router(ent), title="hvc benefits")
    api.state.entitlements = ent
    return runtime, api
