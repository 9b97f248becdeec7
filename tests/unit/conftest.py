"""What the unit tests of the project as a whole share: the stream services and their inputs."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import pytest

STREAM_SERVICES = ("tiering", "warnings", "benefits", "complaints")


def inputs(service: str) -> list[str]:
    """A service's subscriptions: its engine pipeline's INPUTS."""
    for module in ("pipeline",):
        if importlib.util.find_spec(f"hvc.{service}.{module}") is not None:
            return list(importlib.import_module(f"hvc.{service}.{module}").INPUTS)
    raise AssertionError(f"{service} declares no INPUTS")


@pytest.fixture
def service_inputs() -> Callable[[str], list[str]]:
    return inputs
