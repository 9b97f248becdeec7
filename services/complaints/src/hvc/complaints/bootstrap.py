"""Builds the complaints service: its runtime, agents and HTTP app, from settings."""

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.complaints import agents


def bootstrap() -> tuple[ServiceRuntime, FastAPI]:
    runtime = ServiceRuntime("complaints")
    agents.register(runtime)
    return runtime, runtime.http_app(title="hvc complaints")
