"""Builds the benefits service: its runtime, agents and HTTP app, from settings."""

from fastapi import FastAPI

from hvc.benefits import agents
from hvc.common.service import ServiceRuntime


def bootstrap() -> tuple[ServiceRuntime, FastAPI]:
    runtime = ServiceRuntime("benefits")
    agents.register(runtime)
    return runtime, runtime.http_app(title="hvc benefits")
