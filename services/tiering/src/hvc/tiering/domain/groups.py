"""Group customers (集团客户, 003, DOMAIN §6): a group's file, and the group customer
department's indicators over a period.

- The **file** (集团客户档案): the group's latest snapshot (name, sector, handsets, spend) and
  class, its members, its key persons and its manager. The manager is the one most of its key
  persons have in the CRM, else the one most of its members have (ties: the lowest id); the
  CRM names no manager for a group itself. A file is complete when it has every item the rule
  set requires (`GroupFileRules.required`).
- **Filing rate** (建档率): complete files / groups, by class, against each class's target.
- **Member coverage** (集团成员覆盖率): members who are subscribers here / the groups'
  handsets, against its target.
- **Stability** (集团客户稳定率): of the members a period starts with, the share still members
  at its end (a member who left and came back within it counts as kept), against its target.
- **Staffing** (003): groups per manager against one manager per `groups_per_manager`.

Pure: the documents of the `groups` and `group_members` views in, figures out.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from hvc.tiering.domain.model import GroupSnapshot
from hvc.tiering.domain.rules import RuleSet
from hvc.tiering.domain.timeline import group_class

CLASSES = ("A", "B", "C")
PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")


@dataclass(frozen=True)
class GroupFile:
    group_id: str
    name: str
    sector: str
    handsets: int
    monthly_spend_fen: int
    group_class: str | None  # None: no snapshot of the group yet (known by its members only)
    members: int
    key_persons: tuple[str, ...]
    key_person_count: int
    manager_id: str | None
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "name": self.name,
            "sector": self.sector,
            "handsets": self.handsets,
            "monthly_spend_fen": self.monthly_spend_fen,
            "class": self.group_class,
            "members": self.members,
            "key_persons": list(self.key_persons),
            "key_person_count": self.key_person_count,
            "manager_id": self.manager_id,
            "complete": self.complete,
            "missing": list(self.missing),
        }


def _counts(items: Iterable[Mapping[str, Any]] | None) -> dict[str, int]:
    return {str(x["id"]): int(x["members"]) for x in items or ()}


def _most(counts: Mapping[str, int]) -> str | None:
    return min(counts, key=lambda m: (-counts[m], m)) if counts else None


def group_file(
    doc: Mapping[str, Any], snapshots: Iterable[GroupSnapshot], rules: RuleSet
) -> GroupFile:
    """A group's file from its `groups` view document and its snapshots."""
    latest = max(snapshots, key=lambda s: (s.at, s.event_id), default=None)
    manager = _most(_counts(doc.get("key_person_managers"))) or _most(_counts(doc.get("managers")))
    have = {
        "name": bool(latest and latest.name.strip()),
        "sector": bool(latest and latest.sector.strip()),
        "handsets": bool(latest and latest.handsets > 0),
        "key_person": int(doc.get("key_person_count") or 0) > 0,
        "manager": manager is not None,
    }
    return GroupFile(
        group_id=str(doc["_id"]),
        name=latest.name if latest else "",
        sector=latest.sector if latest else "",
        handsets=latest.handsets if latest else 0,
        monthly_spend_fen=latest.monthly_spend_fen if latest else 0,
        group_class=group_class(latest, rules.groups) if latest else None,
        members=int(doc.get("members") or 0),
        key_persons=tuple(doc.get("key_persons") or ()),
        key_person_count=int(doc.get("key_person_count") or 0),
        manager_id=manager,
        missing=tuple(item for item in rules.group_file.required if not have[item]),
    )


def period_bounds(period: str, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """`YYYY`, `YYYY-MM` or `YYYY-Qn` in the operator's zone: its first instant and the next
    period's, in UTC."""
    m = PERIOD.match(period)
    if m is None:
        raise ValueError(f"period {period!r} is not YYYY, YYYY-MM or YYYY-Qn")
    year = int(m[1])
    if m[2]:
        first, months = int(m[2]), 1
    elif m[3]:
        first, months = 3 * int(m[3]) - 2, 3
    else:
        first, months = 1, 12
    end_month = first - 1 + months
    start = dt.datetime(year, first, 1, tzinfo=zone)
    end = dt.datetime(year + end_month // 12, end_month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _covers(stints: Iterable[Mapping[str, Any]], t: dt.datetime) -> bool:
    """A member at `t`: a stint began by then (or at a time not known) and had not ended."""
    return any(
        (s["from"] is None or _utc(s["from"]) <= t) and (s["to"] is None or _utc(s["to"]) > t)
        for s in stints
    )


def _utc(v: dt.datetime) -> dt.datetime:
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def indicators(
    files: Iterable[GroupFile],
    members: Iterable[Mapping[str, Any]],
    rules: RuleSet,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Any]:
    """The department's indicators: filing rate, member coverage and staffing as the files
    are now; stability over [start, end) from the members' stints."""
    targets = rules.group_file
    filing = {c: [0, 0] for c in CLASSES}  # complete, groups
    coverage = {c: [0, 0] for c in CLASSES}  # members, handsets
    class_of: dict[str, str] = {}
    per_manager: Counter[str] = Counter()
    unmanaged = 0
    for f in files:
        cls = f.group_class or "C"  # known by its members only: the smallest class
        class_of[f.group_id] = cls
        filing[cls][1] += 1
        filing[cls][0] += f.complete
        coverage[cls][0] += f.members
        coverage[cls][1] += f.handsets
        if f.manager_id:
            per_manager[f.manager_id] += 1
        else:
            unmanaged += 1
    stable = {c: [0, 0] for c in CLASSES}  # kept, at start
    for m in members:
        stints = m.get("stints") or []
        if not _covers(stints, start):
            continue
        cls = class_of.get(str(m["group_id"]), "C")
        stable[cls][1] += 1
        stable[cls][0] += _covers(stints, end)

    def ratio(t: dict[str, list[int]], part: str, whole: str, target: float) -> dict[str, Any]:
        """An indicator: (part, whole) per class and in all, its rate, against `target`."""
        n, of = sum(v[0] for v in t.values()), sum(v[1] for v in t.values())
        return {
            "by_class": {
                c: {whole: t[c][1], part: t[c][0], "rate": _rate(t[c][0], t[c][1])} for c in CLASSES
            },
            whole: of,
            part: n,
            "rate": _rate(n, of),
            "target": target,
            "met": _met(n, of, target),
        }

    groups = sum(v[1] for v in filing.values())
    filing_rate = ratio(filing, "complete", "groups", 0.0)
    del filing_rate["target"], filing_rate["met"]  # its targets are per class
    filing_targets = {str(k): v for k, v in targets.filing_targets.items()}
    for c in CLASSES:
        target = filing_targets[c]
        row = filing_rate["by_class"][c]
        row["target"], row["met"] = target, _met(row["complete"], row["groups"], target)
    cap = targets.groups_per_manager
    return {
        "filing_rate": filing_rate,
        "member_coverage": ratio(coverage, "members", "handsets", targets.coverage_target),
        "stability": ratio(stable, "kept", "at_start", targets.stability_target),
        "staffing": {
            "groups_per_manager": cap,
            "managers": len(per_manager),
            "managers_needed": math.ceil(groups / cap),
            "over_ratio": {m: n for m, n in sorted(per_manager.items()) if n > cap},
            "without_manager": unmanaged,
        },
    }


def _met(part: int, whole: int, target: float) -> bool | None:
    return None if not whole else part / whole >= target
