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
