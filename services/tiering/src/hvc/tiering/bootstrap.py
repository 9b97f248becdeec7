"""Builds the tiering service: rule book, its pipeline on the stream engine, HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings
from hvc.common.streams import Pipeline
from hvc.tiering import pipeline
from hvc.tiering.api.routes import make_router
from hvc.tiering.decisions import Commands
from hvc.tiering.domain.rules import load_rulebook
from hvc.tiering.pipeline import TieringHandler
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
    commands = Commands(repo, book, runtime.send)
    runtime.on_start(repo.ensure_indexes)
    runtime.stream(
        Pipeline.of(name, pipeline.INPUTS, TieringHandler(book)),
        commit_interval_s=settings.flush_interval_seconds,
    )
    api = runtime.http_app(make_router(commands), title="hvc tiering")
    api.state.commands = commands
    return runtime, api
