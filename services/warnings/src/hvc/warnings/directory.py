"""What the HTTP side reads of each customer beyond the signals: the CRM profile (account
manager, group, do-not-disturb) and the tier in force, from the `profiles` view the pipeline
writes."""

from __future__ import annotations

from typing import Any, Protocol


class Lookups(Protocol):
    """A customer's profile and tier in force, as the HTTP side reads them."""

    async def profile_of(self, customer_id: str) -> dict[str, Any]: ...

    async def tier_of(self, customer_id: str) -> str: ...


class ViewDirectory:
    """The lookups from the `profiles` view the stream pipeline writes (hvc.warnings.
    pipeline): every replica answers the same, whichever partitions it holds."""

    def __init__(self, db: Any) -> None:
        self.profiles = db["profiles"]

    async def profile_of(self, customer_id: str) -> dict[str, Any]:
        found = await self.profiles.find_one({"_id": customer_id})
        return dict(found or {})

    async def tier_of(self, customer_id: str) -> str:
        return str((await self.profile_of(customer_id)).get("tier") or "NONE")
