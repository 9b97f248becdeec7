"""Builds the warnings service: rules, its pipeline on the stream engine, and the HTTP app."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline
from hvc.warnings import callbacks, pipeline
from hvc.warnings.api.routes import make_router
from hvc.warnings.assignment import Assigner, Staffing
from hvc.warnings.callback_desk import CallbackDesk
from hvc.warnings.contacts import Contacts
from hvc.warnings.directory import LOOKUP, ViewDirectory
from hvc.warnings.domain.rules import load_rules
from hvc.warnings.pipeline import WarningsHandler
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository
from hvc.warnings.settings import WarningsSettings
from hvc.warnings.tasks import Tasks

log = logging.getLogger(__name__)


def bootstrap(
    *,
    name: str = "warnings",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    settings: WarningsSettings | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or WarningsSettings()
    rules = load_rules(settings.rules_file)  # invalid rules stop start-up
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    repo = Repository(runtime.db)
    assigner = Assigner(runtime.db, rules)  # the HTTP side's: loads for the reports
    runtime.on_start(repo.ensure_indexes)
    runtime.on_start(assigner.load_state)

    marked: list[bool] = []

    async def mark_closed() -> None:
        # Tasks closed before tasks were marked: marked once per process, so the open ones are
        # read by index (a close marks its own task: hvc.warnings.repository.Repository.close;
        # one it left unmarked is still read as closed by its closure). Tried again each
        # minute until it has run.
        if marked:
            return
        if changed := await repo.mark_closed():
            log.info("closed tasks marked", extra={"tasks": changed})
        marked.append(True)

    runtime.every(60.0, "mark-closed-tasks", mark_closed)
    staffing = Staffing(rules)
    handler = WarningsHandler(rules, settings.close_grace_seconds, settings.usage_lateness_seconds)
    wall = settings.clock == "wall"
    runtime.stream(
        Pipeline.of(name, pipeline.INPUTS, handler, clock=wall),
        commit_interval_s=settings.flush_interval_seconds,
        # One staffing for the tasks and the callbacks and visits: a customer's (a group's)
        # work goes to the one manager it is assigned, and its `lookup` documents (the VIP
        # line's) name that manager.
        before_write={"tasks": staffing, callbacks.VIEW: staffing, LOOKUP: staffing.callers},
        clock_tick_s=settings.clock_tick_seconds if wall else None,
    )
    lookups = ViewDirectory(runtime.db)
    tasks = Tasks(repo, runtime.send)
    contacts = Contacts(repo, rules, lookups, runtime.send)
    reports = Reports(repo, assigner)
    desk = CallbackDesk(repo, rules.zone, runtime.send)
    api = runtime.http_app(
        make_router(tasks, contacts, reports, lookups, desk), title="hvc warnings"
    )
    return runtime, api
