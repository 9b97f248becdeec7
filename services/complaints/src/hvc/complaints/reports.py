"""Complaint reports: SLA compliance by tier, channel and category; breaches and escalations;
repeat complainants; satisfaction. Computed from the read model in one scan."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from itertools import pairwise
from typing import Any

from hvc.common import monthly
from hvc.complaints.pipeline import MONTHLY_VIEW
from hvc.complaints.repository import Repository

NAMES = ("sla", "breaches", "repeat-complainants", "satisfaction")
REPEAT_WINDOW = dt.timedelta(days=30)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


async def report(repo: Repository, name: str) -> dict[str, Any]:
    views = await repo.all_views()
    if name == "sla":
        return sla(views)
    if name == "breaches":
        return breaches(views)
    if name == "repeat-complainants":
        return repeat(views)
    return satisfaction(views)


def sla(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of complaints never breached, by tier, channel and category."""
    out: dict[str, Any] = {}
    for dim, key in (("by_tier", "tier"), ("by_channel", "channel"), ("by_category", "category")):
        rows: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "met": 0})
        for v in views:
            k = {"tier": v["sla"]["tier"], "channel": v["channel"]["name"]}.get(
                key, v["ticketType"]
            )
            rows[k]["total"] += 1
            rows[k]["met"] += 0 if v["sla"]["breached"] else 1
        out[dim] = {
            k: {**r, "compliance": round(r["met"] / r["total"], 4)} for k, r in sorted(rows.items())
        }
    out["total"] = len(views)
    return out


def breaches(views: list[dict[str, Any]]) -> dict[str, Any]:
    breached = [v for v in views if v["sla"]["breached"]]
    by_level: dict[str, int] = defaultdict(int)
    for v in breached:
        by_level[v["sla"]["escalatedTo"]] += 1
    items = [
        {
            "id": v["id"],
            "customer_id": v["customer_id"],
            "status": v["status"],
            "tier": v["sla"]["tier"],
            "escalatedTo": v["sla"]["escalatedTo"],
            "milestones": v["sla"]["milestones"],
        }
        for v in sorted(breached, key=lambda v: -v["sla"]["escalationLevel"])
    ]
    return {"total": len(breached), "by_escalation": dict(by_level), "items": items[:500]}


def repeat(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Customers with another complaint within 30 days of a previous one."""
    filed: dict[str, list[dt.datetime]] = defaultdict(list)
    for v in views:
        filed[v["customer_id"]].append(_utc(v["creationDate"]))
    items: list[dict[str, Any]] = []
    for cid, times in filed.items():
        times.sort()
        repeats = sum(1 for a, b in pairwise(times) if b - a <= REPEAT_WINDOW)
        if repeats:
            items.append({"customer_id": cid, "complaints": len(times), "repeats": repeats})
    items.sort(key=lambda i: (-i["repeats"], i["customer_id"]))
    return {"window_days": REPEAT_WINDOW.days, "customers": len(items), "items": items[:500]}


def satisfaction(views: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [v for v in views if v.get("satisfaction") is not None]
    dist = {str(i): 0 for i in range(1, 6)}
    by_channel: dict[str, list[int]] = defaultdict(list)
    for v in scored:
        dist[str(v["satisfaction"])] += 1
        by_channel[v["channel"]["name"]].append(v["satisfaction"])
    mean = round(sum(v["satisfaction"] for v in scored) / len(scored), 3) if scored else None
    return {
        "responses": len(scored),
        "mean": mean,
        "distribution": dist,
        "by_channel": {k: round(sum(x) / len(x), 3) for k, x in sorted(by_channel.items())},
    }


async def by_month(repo: Repository, name: str, first: str, last: str) -> dict[str, Any]:
    """Month by month from the pipeline's monthly counts (hvc.common.monthly): `sla`, the
    compliance of each month's filings (never breached / filed) overall and by tier, channel
    and category; `satisfaction`, the callbacks' scores of each month."""
    sums = await monthly.read(repo.db, MONTHLY_VIEW, first, last)
    items = []
    for month, c in sums.items():
        if name == "sla":
            row: dict[str, Any] = {"month": month, **_compliance(c)}
            for dim in ("tier", "channel", "category"):
                filed = monthly.split(c, f"filed|{dim}")
                breached = monthly.split(c, f"breached|{dim}")
                row[f"by_{dim}"] = {
                    k: _compliance({"filed": n, "breached": breached.get(k, 0)})
                    for k, n in sorted(filed.items())
                }
            items.append(row)
        else:
            dist = {str(i): c.get(f"satisfaction:{i}", 0) for i in range(1, 6)}
            n = sum(dist.values())
            mean = round(sum(int(k) * v for k, v in dist.items()) / n, 3) if n else None
            items.append({"month": month, "responses": n, "mean": mean, "distribution": dist})
    return {"from": first, "to": last, "items": items}


def _compliance(c: dict[str, int]) -> dict[str, Any]:
    filed, breached = c.get("filed", 0), c.get("breached", 0)
    rate = round((filed - breached) / filed, 4) if filed else None
    return {"filed": filed, "breached": breached, "compliance": rate}
