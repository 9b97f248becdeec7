"""Settings of the warnings service (env prefix HVC_WARNINGS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from hvc.warnings.domain.rules import DEFAULT_RULES


class WarningsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_WARNINGS_", extra="ignore")

    # The warning rules in force (versioned data; a ConfigMap in Kubernetes).
    rules_file: Path = DEFAULT_RULES
