"""Settings of the benefits service (env prefix HVC_BENEFITS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hvc.benefits.domain.catalogue import DEFAULT_CATALOGUE


class BenefitsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_BENEFITS_", extra="ignore")

    # The benefit catalogue in force (versioned data; a ConfigMap in Kubernetes).
    catalogue_file: Path = DEFAULT_CATALOGUE
    # What birthdays, claims and expiries follow: the partitions' event time ("event": a
    # replayed or simulated feed) or the wall clock ("wall", live: published to hvc.clock.v1
    # every `clock_tick_seconds`, so a quiet partition still reaches its due times).
    clock: Literal["event", "wall"] = "event"
    clock_tick_seconds: float = Field(default=30.0, gt=0)
    close_grace_seconds: int = Field(default=900, ge=0)
    # The engine's commit interval: views written and offsets committed that often.
    flush_interval_seconds: float = Field(default=1.0, gt=0)
