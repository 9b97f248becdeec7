"""Builds the gateway service: its runtime, agents and HTTP app, from settings."""

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime


def bootstrap() -> tuple[ServiceRuntime, FastAPI]:
    runtime = ServiceRuntime("gateway")
    # The gateway consumes nothing; it publishes to input topics and composes reads.
    return runtime, runtime.http_app(title="hvc gateway")
