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
    # What birthdays, claims and expiries follow: the latest event time seen ("event": a
    # replayed or simulated feed) or the wall clock ("wall", live).
    clock: Literal["event", "wall"] = "event"
    close_grace_seconds: int = Field(default=900, ge=0)
    flush_interval_seconds: float = Field(default=1.0, gt=0)
    tick_seconds: float = Field(default=1.0, gt=0)
