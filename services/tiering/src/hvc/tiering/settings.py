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
    # Events handled at once per input topic, each customer's in order in one lane: a
    # customer's store round trips no longer hold up the others (1: one at a time).
    lanes: int = Field(default=16, ge=1, le=256)
