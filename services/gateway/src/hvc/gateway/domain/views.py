"""What a customer (and an integration) is shown of what the services answer staff: the tier,
its source and validity, never the internal notes behind them (an override's reason and who
set it, a decision's detail); a complaint without its internal work orders and escalation
targets. Pure: the routes apply it by role."""

from __future__ import annotations

from typing import Any

OUTSIDE = ("customer", "integration")  # roles that see no internal notes


def tier(explained: dict[str, Any]) -> dict[str, Any]:
    """The effective tier, its source and validity (from when an annual assessment holds)."""
    out = {
        k: explained.get(k)
        for k in ("customer_id", "at", "effective_tier", "source", "ruleset_version")
    }
    annual = explained.get("annual") or {}
    out["valid_from"] = annual.get("valid_from") if out["source"] == "ANNUAL" else None
    return out


def history(page: dict[str, Any]) -> dict[str, Any]:
    """Tier decisions: when, from what to what, by which source; no detail or score."""
    keep = ("effective_from", "old_tier", "new_tier", "source")
    return {**page, "items": [{k: d.get(k) for k in keep} for d in page.get("items", [])]}


def complaint(c: dict[str, Any]) -> dict[str, Any]:
    """A complaint without work orders (internal departments) and escalation targets."""
    out = {k: v for k, v in c.items() if k != "workOrders"}
    if isinstance(out.get("sla"), dict):
        out["sla"] = {
            k: v for k, v in out["sla"].items() if k not in ("escalatedTo", "escalationLevel")
        }
    return out
