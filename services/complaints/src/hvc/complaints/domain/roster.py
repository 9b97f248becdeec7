"""Who an escalation reaches (DOMAIN §4 and §6): the named person at each level of the chain
(agent → team lead → department head → director), as versioned data. The agent is the one who
last acted on the complaint, else the channel's duty agent; the department head is the head of
the department its work order was dispatched to, else the chain's."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hvc.complaints.domain.policy import CHANNELS


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    chain: dict[str, str]  # level -> staff id: every level of the escalation chain
    channels: dict[str, dict[str, str]] = Field(default_factory=dict)  # a channel's own people
    departments: dict[str, str] = Field(default_factory=dict)  # department -> its head

    @model_validator(mode="after")
    def _complete(self) -> Roster:
        if any(not v.strip() for v in self.chain.values()):
            raise ValueError("a level of the chain names nobody")
        if not set(self.channels) <= set(CHANNELS):
            raise ValueError(f"unknown channel in the roster: {sorted(self.channels)}")
        return self

    def covers(self, levels: tuple[str, ...]) -> None:
        """Raise unless every level of a policy's chain names a person."""
        missing = [lv for lv in levels if lv not in self.chain]
        if missing:
            raise ValueError(f"the roster names nobody for {missing}")

    def person(
        self, level: str, channel: str, *, agent: str | None, department: str | None
    ) -> str | None:
        if level == "AGENT" and agent:
            return agent
        if level == "DEPARTMENT_HEAD" and department:
            head = {_norm(d): h for d, h in self.departments.items()}.get(_norm(department))
            if head:
                return head
        return self.channels.get(channel, {}).get(level) or self.chain.get(level)


def _norm(department: str) -> str:
    """`network-ops`, `Network Ops` and `NETWORK_OPS` are one department."""
    return "_".join(department.strip().upper().replace("-", " ").split())


def escalation_level(percent: int, at_risk_percent: int, step_percent: int, levels: int) -> int:
    """The chain's level a milestone reaches: at risk the first, a breach the second, each
    further step the next, up to the last."""
    if percent < 100:
        return 0
    return min(1 + (percent - 100) // step_percent, levels - 1)


def load_roster(path: Path) -> Roster:
    try:
        return Roster.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"invalid escalation roster {path}: {exc}") from exc


DEFAULT_ROSTER = Path(__file__).resolve().parent.parent / "rosters" / "2026.1.json"
