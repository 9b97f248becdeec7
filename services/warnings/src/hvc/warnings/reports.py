"""The warnings service's reports: warnings by code, level and tier; open and overdue
retention tasks by manager (with portfolio loads); retention rate by code."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hvc.common import monthly
from hvc.warnings.assignment import Assigner
from hvc.warnings.outages import VIEW as OUTAGE_VIEW
from hvc.warnings.pipeline import MONTHLY, RETENTION
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
        # A warning's category follows from its code under the rule set (DOMAIN §6).
        by_category: dict[str, int] = defaultdict(int)
        for code, n in by_code.items():
            by_category[self.assigner.rules.category_of(code)] += n
        return {
            "items": items,
            "by_code": dict(sorted(by_code.items())),
            "by_category": dict(sorted(by_category.items())),
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
            items.append(
                {
                    "code": code,
                    "outcomes": dict(outcomes),
                    "closed": sum(outcomes.values()),
                    "retention_rate": _rate(outcomes),
                }
            )
        return {"items": items}

    async def warnings_by_month(self, first: str, last: str) -> dict[str, Any]:
        """Warnings raised per month (the operator's calendar), by code, level and tier: the
        pipeline's monthly counts (hvc.common.monthly), summed over its partitions."""
        sums = await monthly.read(self.repo.db, MONTHLY, first, last)
        items = [
            {
                "month": m,
                "total": c.get("total", 0),
                "by_code": monthly.split(c, "code"),
                "by_level": monthly.split(c, "level"),
                "by_tier": monthly.split(c, "tier"),
                "by_category": monthly.split(c, "category"),
            }
            for m, c in sums.items()
        ]
        return {"from": first, "to": last, "items": items}

    async def outage(self, outage_id: str) -> dict[str, Any] | None:
        """An outage's notices: affected high-value customers, sent, suppressed and why, and
        each notice's state (summed over the partitions that decided them)."""
        docs = await self.repo.id_range(OUTAGE_VIEW, f"{outage_id} ", f"{outage_id}!")
        return _outage(docs) if docs else None

    async def outages(self, limit: int) -> dict[str, Any]:
        """The latest outages announced, each with its notices."""
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in await self.repo.all(OUTAGE_VIEW, {}):
            by_id[d["outage_id"]].append(d)
        items = sorted((_outage(v) for v in by_id.values()), key=lambda o: o["announced_at"] or "")
        return {"items": items[::-1][:limit], "total": len(items)}

    async def retention_by_month(
        self, first: str, last: str, manager_id: str | None = None
    ) -> dict[str, Any]:
        """Retention outcomes per month of closing, by manager and by tier (the tier at the
        warning): the pipeline's monthly counts of TaskClosed (hvc.common.monthly); the rate
        is retained / (retained + churned + unreachable)."""
        sums = await monthly.read(self.repo.db, RETENTION, first, last)
        items = []
        for m, c in sums.items():
            by_manager = _outcomes_by(c, "manager")
            by_tier = _outcomes_by(c, "tier")
            by_category = _outcomes_by(c, "category")
            outcomes = monthly.split(c, "outcome")
            if manager_id is not None:  # one manager's own figures
                outcomes = dict(by_manager.get(manager_id, {}))
                by_manager = defaultdict(dict, {manager_id: outcomes} if outcomes else {})
                by_tier, by_category = defaultdict(dict), defaultdict(dict)
            items.append(
                {
                    "month": m,
                    "outcomes": outcomes,
                    "retention_rate": _rate(outcomes),
                    "by_manager": {
                        k: {**v, "retention_rate": _rate(v)} for k, v in sorted(by_manager.items())
                    },
                    "by_tier": {
                        k: {**v, "retention_rate": _rate(v)} for k, v in sorted(by_tier.items())
                    },
                    "by_category": {
                        k: {**v, "retention_rate": _rate(v)} for k, v in sorted(by_category.items())
                    },
                }
            )
        return {"from": first, "to": last, "manager_id": manager_id, "items": items}


def _outcomes_by(counts: dict[str, int], what: str) -> defaultdict[str, dict[str, int]]:
    """The `<what>|outcome` counts of a month as {<what>: {outcome: n}}."""
    out: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for key, n in monthly.split(counts, f"{what}|outcome").items():
        value, outcome = key.rsplit("|", 1)
        out[value][outcome] = n
    return out


def _outage(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One outage's notices: its partitions' documents summed (hvc.warnings.outages)."""
    first = max(docs, key=lambda d: d.get("announced_at") or "")
    counts: dict[str, int] = defaultdict(int)
    phases: dict[str, dict[str, Any]] = {}
    for d in docs:
        for k, n in (d.get("counts") or {}).items():
            counts[k] += int(n)
        for p, v in (d.get("phases") or {}).items():
            ph = phases.setdefault(p, {"due_at": v.get("due_at"), "states": {}, "sent": 0})
            ph["states"][v["state"]] = ph["states"].get(v["state"], 0) + 1
            ph["sent"] += int(v.get("sent", 0))
    keep = ("outage_id", "kind", "services", "cells", "areas", "description")
    times = ("starts_at", "ends_at", "ended_at", "announced_at")
    return {
        **{k: first.get(k) for k in keep},
        **{k: first.get(k) or None for k in times},
        "affected": sum(int(d.get("affected", 0)) for d in docs),
        "sent": counts.get("sent", 0),
        "suppressed": {
            k.split(":", 1)[1]: n for k, n in sorted(counts.items()) if k.startswith("suppressed:")
        },
        "phases": phases,
        "partitions": len(docs),
    }


def _rate(outcomes: dict[str, int]) -> float | None:
    judged = sum(outcomes.get(o, 0) for o in ("RETAINED", "CHURNED", "UNREACHABLE"))
    return round(outcomes.get("RETAINED", 0) / judged, 4) if judged else None
