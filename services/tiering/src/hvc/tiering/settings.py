"""Settings of the tiering service (env prefix HVC_TIERING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hvc.tiering.domain.rules import DEFAULT_RULESETS


class TieringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_TIERING_", extra="ignore")

    # A folder of *.json rule sets (a ConfigMap in Kubernetes); all are validated at start-up.
    ruleset_dir: Path = DEFAULT_RULESETS
    # The engine's commit interval: views written and offsets committed that often.
    flush_interval_seconds: float = Field(default=1.0, gt=0)
