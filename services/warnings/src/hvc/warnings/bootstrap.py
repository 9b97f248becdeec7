"""Builds the warnings service: rules, repository, raiser, keyed streams and HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline
from hvc.warnings import pipeline, streams
from hvc.warnings.api.routes import make_router
from hvc.warnings.assignment import Assigner
from hvc.warnings.contacts import Contacts
from hvc.warnings.directory import Directory, ViewDirectory
from hvc.warnings.domain.rules import load_rules
from hvc.warnings.pipeline import WarningsHandler
from hvc.warnings.raiser import Raiser
from hvc.warnings.reports import Reports
from hvc.warnings.repository import Repository
from hvc.warnings.settings import WarningsSettings
from hvc.warnings.tasks import Tasks


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
    directory = Directory()
    assigner = Assigner(runtime.db, rules)
    raiser = Raiser(repo, rules, runtime.send, assigner, directory)
    runtime.on_start(repo.ensure_indexes)
    runtime.on_start(assigner.load_state)
    lookups: Directory | ViewDirectory = directory
    if settings.engine == "quix":
        handler = WarningsHandler(
            rules, settings.close_grace_seconds, settings.usage_lateness_seconds
        )
        runtime.stream(
            Pipeline.of(name, pipeline.INPUTS, handler),
            commit_interval_s=settings.flush_interval_seconds,
        )
        lookups = ViewDirectory(runtime.db)
    else:
        runtime.on_start(raiser.load_unassigned)
        runtime.keyed_streams(
            streams.processors(
                raiser, settings.close_grace_seconds, directory, settings.usage_lateness_seconds
            ),
            flush_interval_s=settings.flush_interval_seconds,
            wall_clock=settings.clock == "wall",
        )
    tasks = Tasks(repo, runtime.send)
    contacts = Contacts(repo, rules, lookups)
    reports = Reports(repo, assigner)
    api = runtime.http_app(make_router(tasks, contacts, reports, lookups), title="hvc warnings")
    api.state.raiser = raiser
    return runtime, api
