"""Settings of the complaints service (env prefix HVC_COMPLAINTS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hvc.common import workcal
from hvc.complaints.domain.policy import DEFAULT_POLICIES
from hvc.complaints.domain.roster import DEFAULT_ROSTER


class ComplaintsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_COMPLAINTS_", extra="ignore")

    # A folder of SLA policies (*.json, a ConfigMap in Kubernetes), validated at start-up.
    policy_dir: Path = DEFAULT_POLICIES
    # The operator's working calendar (public holidays, adjusted working days) for the policy
    # calendars that use it (hvc.common.workcal); shipped: Mainland China 2025-2027.
    working_calendar_file: Path = workcal.SHIPPED
    # Who escalations reach (hvc.complaints.domain.roster): the named person at each level of
    # the chain, per channel and per department; every policy's levels must be named.
    roster_file: Path = DEFAULT_ROSTER
    # What the SLA timers follow: the wall clock (live), or the latest event time seen on
    # the inputs (a replayed or simulated feed: `make run` plays a simulated year).
    clock: Literal["wall", "event"] = "event"
    # How often the service's clock ticks reach every partition of its pipeline (the wall
    # clock's time, or the latest event time seen): milestones are due by then at the latest.
    tick_seconds: float = Field(default=1.0, gt=0)
    # The pipeline's checkpoint: views (and the outcomes the HTTP side waits for) are written
    # and offsets committed this often.
    flush_interval_seconds: float = Field(default=0.25, gt=0)
    # How long a transition over HTTP waits for the pipeline's outcome before it answers 202
    # (under the gateway's upstream timeout, 5 s, so that the gateway relays the 202).
    command_wait_seconds: float = Field(default=3.0, gt=0)
    # A filing waits, at most this long (0: not at all), until tiering has decided on every
    # input published before it, so that its tier does not depend on which of the two topics
    # arrived first (hvc.complaints.frontier). Tiering's consumer group and input topics:
    tiering_wait_seconds: float = Field(default=60.0, ge=0)
    # (its pipeline's group: `<service>-stream`, `-<database>` appended off its own database)
    tiering_group: str = "tiering-stream"
    tiering_inputs: list[str] = [
        "crm.customers.v1",
        "billing.accounts.v1",
        "hvc.tiering-commands.v1",
    ]
