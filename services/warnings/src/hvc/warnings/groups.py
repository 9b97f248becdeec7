"""Group warnings (DOMAIN §6, from 003): when several members of one group customer (3 by
default) are warned in one month, the group is.

A group's members live in the partitions of their own ids; the group in its own. Each first
warning of a member of a group goes, as MemberWarned keyed by the group's id, to
hvc.group-signals.v1, an input of the same pipeline (a repartition, not a mirror): the group's
partition keeps, per month, the members warned (state key `group|<id>`), and raises
GROUP_MEMBER_CHURN once per (group, month) when they reach the threshold: a warning whose
customer is the group (a group customer, 集团客户), with its task for the account manager of the
members warned (the one most of them have) and the evidence of which members and codes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from hvc.common import topics
from hvc.common.streams import Context
from hvc.events.v1 import warnings_pb2
from hvc.warnings.domain.rules import Code, WarningRules
from hvc.warnings.domain.signals import Signal

SIGNALS = topics.GROUP_SIGNALS
PREFIX = "group|"
KEEP_MONTHS = 24  # a group's months kept: members of lagging partitions report late


def signal(
    ctx: Context,
    group_id: str,
    member_id: str,
    warning_id: str,
    code: str,
    month: str,
    manager_id: str | None,
    at: dt.datetime,
) -> None:
    """A member's first warning, to its group's partition (event id: the warning's)."""
    m = warnings_pb2.GroupSignalEvent(event_id=f"gs-{warning_id}", customer_id=group_id)
    m.occurred_at.FromDatetime(at)
    w = m.member_warned
    w.group_id, w.member_id, w.warning_id, w.month = group_id, member_id, warning_id, month
    w.code = warnings_pb2.WarningRaised.Code.Value(code)
    w.manager_id = manager_id or ""
    ctx.emit(SIGNALS, group_id, m)


def warned(
    ctx: Context, message: Any, rules: WarningRules
) -> tuple[str, Signal, str | None] | None:
    """A MemberWarned in the group's partition: (group id, the group warning's signal, its
    manager) when this member makes the month's count reach the threshold, else None."""
    w = message.member_warned
    gid = w.group_id or message.customer_id
    st = ctx.state(PREFIX + gid)
    months: dict[str, dict[str, Any]] = st.setdefault("m", {})
    month = months.setdefault(w.month, {"members": {}, "raised": False})
    code = warnings_pb2.WarningRaised.Code.Name(w.code)
    if w.member_id in month["members"]:
        return None  # one member counts once a month, whatever its warnings
    month["members"][w.member_id] = [code, w.manager_id]
    for old in sorted(months)[:-KEEP_MONTHS]:
        del months[old]
    if month["raised"] or len(month["members"]) < rules.group_warning_members:
        return None
    month["raised"] = True
    members = sorted(month["members"])
    codes = Counter(v[0] for v in month["members"].values())
    managers = Counter(v[1] for v in month["members"].values() if v[1])
    manager = managers.most_common(1)[0][0] if managers else None
    found = Signal(
        Code.GROUP_MEMBER_CHURN,
        w.month,
        f"{len(members)} members of group {gid} warned in {w.month}",
        {"members_warned": len(members)},
        notes={"members": ",".join(members), "codes": ",".join(sorted(codes))},
    )
    return gid, found, manager
