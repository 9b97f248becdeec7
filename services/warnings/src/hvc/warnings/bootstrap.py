"""Builds the warnings service: its runtime, agents and HTTP app, from settings."""

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.warnings import agents


def bootstrap() -> tuple[ServiceRuntime, FastAPI]:
    runtime = ServiceRuntime("warnings")
    agents.register(runtime)
    return runtime, runtime.http_app(title="hvc warnings")
