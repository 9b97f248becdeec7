"""Settings of the warnings service (env prefix HVC_WARNINGS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hvc.warnings.domain.rules import DEFAULT_RULES


class WarningsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_WARNINGS_", extra="ignore")

    # The warning rules in force (versioned data; a ConfigMap in Kubernetes).
    rules_file: Path = DEFAULT_RULES
    # Daily and monthly closes follow each customer's event time (a replayed or simulated feed
    # is judged on its own calendar): a close is due when a record of the customer's
    # partition passes it. With "wall", the wall clock moves each partition's time too
    # (hvc.clock.v1, every clock_tick_seconds), so a quiet partition still closes on time in
    # a live deployment; never for a replayed or simulated feed, whose closes it would fire
    # ahead of its records.
    clock: Literal["event", "wall"] = "event"
    clock_tick_seconds: float = Field(default=30.0, gt=0)
    # A close is due at its boundary plus this grace: how late an event may arrive and still
    # count in the period it belongs to.
    close_grace_seconds: int = Field(default=900, ge=0)
    # How far behind a customer's newest data usage record another may come and still count
    # in the monthly data volume. The ids within it are kept (memory grows with it); an older
    # record cannot be told from a redelivered copy, and is counted as late, not as usage.
    usage_lateness_seconds: int = Field(default=2 * 86_400, ge=0)
    # How often window state and offsets are persisted (the replay after a crash).
    flush_interval_seconds: float = Field(default=1.0, gt=0)
