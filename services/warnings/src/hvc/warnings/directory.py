"""What the warnings service knows of each customer beyond the signals: the CRM profile
(account manager, group, do-not-disturb) and the tier in force, kept in the keyed state of
the crm.customers.v1 and hvc.tier-decisions.v1 streams and mirrored here for lookups.

The mirror is process-local: it holds the customers of the partitions this process owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Directory:
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)
    # Customers with a task opened before any manager was known for them.
    unassigned: set[str] = field(default_factory=set)

    def profile(self, customer_id: str) -> dict[str, Any]:
        return self.profiles.get(customer_id, {})

    def tier(self, customer_id: str) -> str:
        return self.tiers.get(customer_id, "NONE")

    async def profile_of(self, customer_id: str) -> dict[str, Any]:
        return self.profile(customer_id)

    async def tier_of(self, customer_id: str) -> str:
        return self.tier(customer_id)


class ViewDirectory:
    """The same lookups from the `profiles` view the stream pipeline writes (hvc.warnings.
    pipeline): every replica answers the same, whichever partitions it holds."""

    def __init__(self, db: Any) -> None:
        self.profiles = db["profiles"]

    async def profile_of(self, customer_id: str) -> dict[str, Any]:
        found = await self.profiles.find_one({"_id": customer_id})
        return dict(found or {})

    async def tier_of(self, customer_id: str) -> str:
        return str((await self.profile_of(customer_id)).get("tier") or "NONE")
