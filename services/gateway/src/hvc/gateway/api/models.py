"""The gateway's request bodies. Their enumerations are the contract's (hvc.events.v1): spelt
out as literals for the schema and the type checker, and checked against the generated
enums when this module loads, so that a contract change that is not made here fails at once."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, Field

from hvc.events.v1 import care_pb2, common_pb2, complaints_pb2, warnings_pb2

# Not `.` or `..` (at least one character other than a dot): a path segment of its own.
ID = r"^[A-Za-z0-9_\-:.]*[A-Za-z0-9_\-:][A-Za-z0-9_\-:.]*$"

Channel = Literal[
    "BUSINESS_HALL", "HOTLINE_10086", "APP_WEB", "SMS", "CONSUMER_315", "MAYORS_MAILBOX", "MIIT"
]
REGULATOR_CHANNELS = ("MIIT", "CONSUMER_315", "MAYORS_MAILBOX")
Tier = Literal["VIP", "SILVER", "GOLD", "PLATINUM", "DIAMOND"]  # an override's: not NONE
Status = Literal[
    "ACKNOWLEDGED",
    "DISPATCHED",
    "IN_PROGRESS",
    "PENDING_CUSTOMER",
    "RESOLVED",
    "CALLBACK_DONE",
    "CLOSED",
    "REOPENED",
]  # where a transition goes: every status but RECEIVED
Outcome = Literal["RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED"]


def _names(enum: Any, *left_out: str) -> set[str]:
    """A generated enum's value names (its `keys()`), but the unspecified one."""
    return {n for n in enum.keys() if not n.endswith("_UNSPECIFIED") and n not in left_out}


for _literal, _contract in (
    (Channel, _names(care_pb2.ComplaintFiled.Channel)),
    (Tier, _names(common_pb2.Tier, "NONE")),
    (Status, _names(complaints_pb2.ComplaintUpdated.Status, "RECEIVED")),
    (Outcome, _names(warnings_pb2.TaskClosed.Outcome)),
):
    if set(get_args(_literal)) != _contract:
        raise RuntimeError(f"gateway enum {get_args(_literal)} differs from the contract's")
if not set(REGULATOR_CHANNELS) <= set(get_args(Channel)):
    raise RuntimeError("a regulator channel is not a channel of the contract")


class Override(BaseModel):
    tier: Tier
    reason: str = Field(min_length=3, max_length=500)
    expires_at: AwareDatetime


class NewComplaint(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64, pattern=ID)
    channel: Channel
    category: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=4000)


class Transition(BaseModel):
    to: Status
    note: str = Field(default="", max_length=2000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    department: str | None = Field(default=None, min_length=1, max_length=64)
    transition_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID)


class Contact(BaseModel):
    contact_id: str = Field(min_length=1, max_length=64, pattern=ID)
    channel: Literal["PHONE", "SMS", "VISIT", "WECHAT", "EMAIL", "APP"]
    direction: Literal["OUTBOUND", "INBOUND"] = "OUTBOUND"
    content: str = Field(default="", max_length=2000)
    outcome: str = Field(default="", max_length=200)


class Close(BaseModel):
    outcome: Outcome
    note: str = Field(default="", max_length=2000)


class CallbackDone(BaseModel):
    outcome: Literal["REACHED", "NOT_REACHED", "DECLINED"]
    notes: str = Field(default="", max_length=2000)


class Simulation(BaseModel):
    ruleset: dict[str, Any]
    year: int = Field(ge=2000, le=2100)
    as_of: AwareDatetime | None = None
