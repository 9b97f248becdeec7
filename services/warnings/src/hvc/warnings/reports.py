"""The warnings service's reports: warnings by code, level and tier; open and overdue
retention tasks by manager (with portfolio loads); retention rate by code."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hvc.warnings.assignment import Assigner
from hvc.warnings.repository import Repository

NAMES = ("warnings", "tasks", "retention")


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d


@dataclass
class Reports:
    repo: Repository
    assigner: Assigner

    async def warnings(self) -> dict[str, Any]:
        rows = await self.repo.group("warnings", ["code", "level", "tier"])
        items = [{**r["_id"], "count": r["count"]} for r in rows]
        by_code: dict[str, int] = defaultdict(int)
        by_tier: dict[str, int] = defaultdict(int)
        for i in items:
            by_code[i["code"]] += i["count"]
            by_tier[i.get("tier") or "NONE"] += i["count"]
        return {
            "items": items,
            "by_code": dict(sorted(by_code.items())),
            "by_tier": dict(sorted(by_tier.items())),
            "total": sum(by_code.values()),
        }

    async def tasks(self, now: dt.datetime) -> dict[str, Any]:
        tasks = await self.repo.all("tasks", {"manager_id": 1, "due_at": 1})
        closed = {c["_id"] for c in await self.repo.all("closures", {"_id": 1})}
        loads = await self.assigner.loads()
        rows: dict[str, dict[str, Any]] = {}
        for t in tasks:
            manager = t.get("manager_id") or "(unassigned)"
            row = rows.setdefault(
                manager, {"manager_id": manager, "open": 0, "overdue": 0, "closed": 0}
            )
            if t["_id"] in closed:
                row["closed"] += 1
                continue
            row["open"] += 1
            if _utc(t["due_at"]) < now:
                row["overdue"] += 1
        for manager, load in loads.items():
            row = rows.setdefault(
                manager, {"manager_id": manager, "open": 0, "overdue": 0, "closed": 0}
            )
            row["portfolio"] = load
        items = sorted(rows.values(), key=lambda r: (-r["overdue"], -r["open"], r["manager_id"]))
        caps = {
            "individuals": self.assigner.rules.manager_max_individuals,
            "groups": self.assigner.rules.manager_max_groups,
        }
        return {"items": items, "caps": caps, "as_of": now.isoformat()}

    async def retention(self) -> dict[str, Any]:
        """Retention rate = retained / (retained + churned + unreachable); NOT_NEEDED is
        excluded (nothing was at stake)."""
        rows = await self.repo.group("closures", ["code", "outcome"])
        by_code: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in rows:
            by_code[r["_id"]["code"]][r["_id"]["outcome"]] += r["count"]
        items = []
        for code, outcomes in sorted(by_code.items()):
            judged = sum(outcomes[o] for o in ("RETAINED", "CHURNED", "UNREACHABLE"))
            items.append(
                {
                    "code": code,
                    "outcomes": dict(outcomes),
                    "closed": sum(outcomes.values()),
                    "retention_rate": round(outcomes["RETAINED"] / judged, 4) if judged else None,
                }
            )
        return {"items": items}
