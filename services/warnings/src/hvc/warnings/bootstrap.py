"""Builds the warnings service: rules, repository, raiser, agents and HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.warnings import agents
from hvc.warnings.api.routes import make_router
from hvc.warnings.domain.rules import load_rules
from hvc.warnings.raiser import Raiser
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
    rules = load_rules((settings or WarningsSettings()).rules_file)  # invalid rules stop start-up
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    repo = Repository(runtime.db)
    raiser = Raiser(repo, rules, runtime.send)
    runtime.on_start(repo.ensure_indexes)
    agents.register(runtime, raiser)
    tasks = Tasks(repo, runtime.send)
    api = runtime.http_app(make_router(tasks), title="hvc warnings")
    api.state.raiser = raiser
    return runtime, api
