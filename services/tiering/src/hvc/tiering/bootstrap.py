"""Builds the tiering service: rule book, repository, decider, agents and HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.tiering import agents
from hvc.tiering.api.routes import make_router
from hvc.tiering.decisions import Decider
from hvc.tiering.domain.rules import load_rulebook
from hvc.tiering.repository import Repository
from hvc.tiering.settings import TieringSettings


def bootstrap(
    *,
    name: str = "tiering",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    tiering: TieringSettings | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = tiering or TieringSettings()
    book = load_rulebook([settings.ruleset_dir])  # invalid rule sets stop the start-up here
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    repo = Repository(runtime.db)
    decider = Decider(repo, book, runtime.send)
    runtime.on_start(repo.ensure_indexes)
    agents.register(runtime, decider, settings.lanes)
    api = runtime.http_app(make_router(decider), title="hvc tiering")
    api.state.decider = decider
    return runtime, api
