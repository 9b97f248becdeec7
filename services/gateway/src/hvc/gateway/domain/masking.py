"""What of a customer's contact data a role is shown: full to the staff who call the customer,
masked for everyone else (PIPL's minimum necessary; never a full number in logs either)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def mask_msisdn(msisdn: str) -> str:
    """`13812348000` -> `138****8000`: the carrier prefix and the last four digits stay."""
    if len(msisdn) >= 8:
        return msisdn[:3] + "*" * (len(msisdn) - 7) + msisdn[-4:]
    return "*" * max(0, len(msisdn) - 2) + msisdn[-2:]


def mask_name(name: str) -> str:
    """`张三丰` -> `张**`; an empty name stays empty."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def contact_view(profile: dict[str, Any], role: str, full_roles: Iterable[str]) -> dict[str, Any]:
    """The name and numbers of a profile as `role` may see them."""
    name = profile.get("name") or ""
    numbers = [str(n) for n in profile.get("msisdns") or []]
    if role in set(full_roles):
        return {"name": name, "msisdns": numbers, "masked": False}
    return {"name": mask_name(name), "msisdns": [mask_msisdn(n) for n in numbers], "masked": True}
