"""Builds the tiering service: its runtime, agents and HTTP app, from settings."""

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.tiering import agents


def bootstrap() -> tuple[ServiceRuntime, FastAPI]:
    runtime = ServiceRuntime("tiering")
    agents.register(runtime)
    return runtime, runtime.http_app(title="hvc tiering")
